"""The serving benchmark's targets and its Markdown report.

The targets come from the serving issue: at 16 connections Ferryman serves at least
twice MLServer's requests per second with a p99 latency no higher than MLServer's; it
reaches at least 85 % of the bare floor's requests per second; and micro-batching at 64
connections at least doubles the unbatched throughput with a p99 latency under
``max_latency_ms`` plus the model's time for one full batch. That latency is judged on
open-loop runs below capacity: under wrk's closed loop, 64 connections always waiting
make latency at least ``64 / throughput`` (Little's law), whatever the server does, so
the closed-loop p99 is reported but not judged. :func:`target_entry` and
:func:`result_row` shape a target's outcome and a contender's table row, and
:func:`target_table` renders the targets, for every serving benchmark.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from _report import format_seconds, machine_lines, markdown_table

LABELS = {
    "ferryman-native": "Ferryman, native",
    "ferryman-v2": "Ferryman, Open Inference V2",
    "mlserver": "MLServer 1.7, V2",
    "floor": "Floor (Starlette + orjson)",
    "batched": "Ferryman, batched (32 rows, 5 ms)",
    "unbatched": "Ferryman, unbatched",
}
#: Same-run ratios of requests per second, as (numerator, denominator).
RATIOS = (
    ("ferryman-native", "mlserver"),
    ("ferryman-v2", "mlserver"),
    ("ferryman-native", "floor"),
    ("ferryman-v2", "floor"),
)
PEER_SPEEDUP = 2.0
FLOOR_SHARE = 0.85
BATCH_SPEEDUP = 2.0


def evaluate_targets(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Check the issue's targets against the measured figures.

    Returns:
        One entry per target and contender: ``target``, ``measured``, ``required`` (both
        as text) and ``passed``.
    """
    targets: list[dict[str, Any]] = []
    for workload in document["workloads"].values():
        results, ratios = workload["results"], workload["ratios"]
        for ferryman in ("ferryman-native", "ferryman-v2"):
            label = LABELS[ferryman]
            if workload["connections"] == 16 and "mlserver" in results:
                ratio = ratios[f"{ferryman}/mlserver"]
                targets.append(
                    target_entry(
                        f"{workload['name']}: {label} req/s vs MLServer",
                        f"{ratio:.2f}x",
                        f">= {PEER_SPEEDUP:g}x",
                        ratio >= PEER_SPEEDUP,
                    )
                )
                ours = results[ferryman]["p99_s"]["median"]
                theirs = results["mlserver"]["p99_s"]["median"]
                targets.append(
                    target_entry(
                        f"{workload['name']}: {label} p99 vs MLServer",
                        format_seconds(ours),
                        f"<= {format_seconds(theirs)}",
                        ours <= theirs,
                    )
                )
            ratio = ratios[f"{ferryman}/floor"]
            targets.append(
                target_entry(
                    f"{workload['name']}: {label} req/s vs floor",
                    f"{ratio:.2f}x",
                    f">= {FLOOR_SHARE:g}x",
                    ratio >= FLOOR_SHARE,
                )
            )
    batching = document["batching"]
    speedup = batching["ratio"]
    targets.append(
        target_entry(
            f"micro-batching x {batching['connections']} conn: batched req/s vs unbatched",
            f"{speedup:.2f}x",
            f">= {BATCH_SPEEDUP:g}x",
            speedup >= BATCH_SPEEDUP,
        )
    )
    bound = batching["max_latency_ms"] / 1000.0 + batching["batch_s"]
    for run in batching["open_loop"]["runs"]:
        if run["contender"] != "batched":
            continue
        result = run["result"]
        p99, errors = result["p99_s"], _errors(result)
        measured = "no answer" if p99 is None else format_seconds(p99)
        if errors:
            measured += f", {errors:,} errors"
        if not result["kept_up"]:
            measured += (
                f", generator lagged (send lag p99 {format_seconds(result['send_lag_p99_s'])})"
            )
        targets.append(
            target_entry(
                f"micro-batching, open loop at {run['rate_per_s']:,.0f} req/s x "
                f"{result['connections']} conn: batched p99",
                measured,
                f"<= {format_seconds(bound)} (max_latency_ms + batch time)",
                p99 is not None and p99 <= bound and errors == 0,
            )
        )
    return targets


def target_entry(target: str, measured: str, required: str, passed: bool) -> dict[str, Any]:
    """One target's outcome, as the report and the JSON carry it."""
    return {"target": target, "measured": measured, "required": required, "passed": passed}


def report_lines(document: Mapping[str, Any]) -> list[str]:
    """Render the results as Markdown: the machine, then the tables."""
    config = document["config"]
    rows: list[list[str]] = []
    ratio_rows: list[list[str]] = []
    for workload in document["workloads"].values():
        for name, result in workload["results"].items():
            rows.append(result_row(workload["name"], LABELS[name], result))
        ratio_rows.append(
            [workload["name"]]
            + [
                f"{workload['ratios'][f'{a}/{b}']:.2f}" if f"{a}/{b}" in workload["ratios"] else "-"
                for a, b in RATIOS
            ]
        )
    batching = document["batching"]
    batch_rows = [
        result_row(f"1 row x {batching['connections']} conn", LABELS[name], result)
        for name, result in batching["results"].items()
    ]
    servers = document["servers"]
    load = document["load_average"]
    lines = [
        f"## Serving benchmark ({'smoke' if document['smoke'] else 'full'} run)",
        "",
        f"`{document['command']}` at {document['started_at']}",
        "",
        *machine_lines(document["machine"]),
        "- Servers: "
        + ", ".join(f"{name} {version}" for name, version in servers.items() if version),
        f"- Server on core {document['cpus']['server']}, wrk (1 thread) on core "
        f"{document['cpus']['wrk']}; 1-minute load average {load['start']:.1f} at the start, "
        f"{load['end']:.1f} at the end",
        "",
        f"Median of {config['rounds']} interleaved rounds of {config['seconds']} s each, "
        f"after {config['warmup_seconds']} s of warm-up; logistic regression pipeline, "
        "30 columns:",
        "",
        *markdown_table(
            ["Workload", "Server", "req/s", "p50", "p99", "Errors"],
            rows,
        ),
        "",
        "Same-run ratios of req/s (median of per-round ratios):",
        "",
        *markdown_table(
            [
                "Workload",
                "Native / MLServer",
                "V2 / MLServer",
                "Native / floor",
                "V2 / floor",
            ],
            ratio_rows,
        ),
        "",
        f"Micro-batching, HistGradientBoostingClassifier (predict_proba: "
        f"{format_seconds(batching['batch_s'])} on {batching['max_batch_size']} rows, "
        f"{format_seconds(batching['one_row_s'])} on 1 row):",
        "",
        *markdown_table(["Workload", "Server", "req/s", "p50", "p99", "Errors"], batch_rows),
        "",
        f"Batched / unbatched req/s: {batching['ratio']:.2f}",
        "",
        _cpu_line(batching),
        "",
        *_open_loop_lines(batching),
        "",
        *_sweep_lines(batching),
        "",
        "Targets:",
        "",
        *target_table(document["targets"]),
    ]
    if document["skipped"]:
        lines += ["", "Skipped: " + "; ".join(document["skipped"])]
    return lines


def _cpu_line(batching: Mapping[str, Any]) -> str:
    """The server's CPU per request on both endpoints, which the machine's noise moves less."""
    cpu = batching["cpu_per_request_s"]
    return (
        "Server CPU per request (every thread of the process, median over rounds; unlike "
        "req/s, it does not depend on how much of its core the server got): batched "
        f"{cpu['batched'] * 1e6:.0f} µs, unbatched {cpu['unbatched'] * 1e6:.0f} µs; "
        f"unbatched / batched {batching['cpu_ratio']:.2f}"
    )


def _sweep_lines(batching: Mapping[str, Any]) -> list[str]:
    """Where batching pays: the ratio next to the cost of Ferryman's own model call."""
    models = {
        "hgb": {
            "model": "the HistGradientBoostingClassifier above",
            "compiled": batching["compiled"],
            "nodes": batching["nodes"],
            "call_s": batching["call_s"],
            "results": batching["results"],
            "ratio": batching["ratio"],
            "cpu_ratio": batching["cpu_ratio"],
        },
        **batching["sweep"],
    }
    rows = [
        [
            f"`{name}`: {found['model']}, "
            + ("compiled" if found["compiled"] else "scikit-learn's predictor"),
            f"{found['nodes']:,}",
            f"{found['call_s']['one_row_s'] * 1e6:,.0f} µs",
            f"{found['call_s']['batch_s'] * 1e6:,.0f} µs",
            f"{found['results']['unbatched']['requests_per_s']['median']:,.0f}",
            f"{found['results']['batched']['requests_per_s']['median']:,.0f}",
            f"{found['ratio']:.2f}",
            f"{found['cpu_ratio']:.2f}",
        ]
        for name, found in models.items()
    ]
    return [
        f"Where micro-batching pays: 1 row x {batching['connections']} conn, "
        f"`max_batch_size={batching['max_batch_size']}, "
        f"max_latency_ms={batching['max_latency_ms']:g}`, against Ferryman's own model "
        "call (median in a fresh process on the server's core, labels and probabilities):",
        "",
        *markdown_table(
            [
                "Model",
                "Tree nodes",
                "Call, 1 row",
                f"Call, {batching['max_batch_size']} rows",
                "Unbatched req/s",
                "Batched req/s",
                "Batched / unbatched",
                "CPU per request, unbatched / batched",
            ],
            rows,
        ),
    ]


def _open_loop_lines(batching: Mapping[str, Any]) -> list[str]:
    """The closed-loop p99 note, then the open-loop runs' table and any lagging runs."""
    connections = batching["connections"]
    closed = batching["results"]["batched"]
    floor = connections / closed["requests_per_s"]["median"]
    open_loop = batching["open_loop"]
    rows: list[list[str]] = []
    lagged: list[str] = []
    for run in open_loop["runs"]:
        result, server = run["result"], run["server_p99"]
        label = f"{LABELS[run['contender']]}, {run['load']}"
        rows.append(
            [
                label,
                f"{run['rate_per_s']:,.0f}",
                f"{result['achieved_per_s']:,.0f}",
                *(_seconds(result[key]) for key in ("p50_s", "p90_s", "p99_s", "max_s")),
                str(_errors(result)),
                format_seconds(result["send_lag_p99_s"]),
                _seconds(server["queue_s"]["value_s"]),
                _seconds(server["compute_s"]["value_s"]),
                _seconds(run["generator_floor"]["p99_s"]),
            ]
        )
        if not result["kept_up"]:
            lagged.append(label)
    lines = [
        f"Closed-loop batched p99 ({format_seconds(closed['p99_s']['median'])}) is information, "
        f"not a target: with {connections} connections always waiting, latency is at least "
        f"{connections} / throughput = {format_seconds(floor)} (Little's law).",
        "",
        f"Open loop: Poisson arrivals over {connections} keep-alive connections, "
        f"{open_loop['seconds']:g} s per run, rates from this run's closed-loop capacity; "
        "latency from each request's due time; queue and compute p99 from the server's "
        "/metrics histograms (interpolated within buckets); the generator floor is the "
        "generator's p99 at the same rate against a server that answers at once "
        "(echo_app.py): what the generator and the machine add, not Ferryman:",
        "",
        *markdown_table(
            [
                "Server, load",
                "Offered req/s",
                "Achieved req/s",
                "p50",
                "p90",
                "p99",
                "max",
                "Errors",
                "Send lag p99",
                "Queue p99",
                "Compute p99",
                "Generator floor p99",
            ],
            rows,
        ),
    ]
    if lagged:
        lines += [
            "",
            f"The generator fell behind its schedule (send lag p99 over "
            f"{format_seconds(open_loop['max_send_lag_s'])}) in: {'; '.join(lagged)}; "
            "those latencies overstate the server's.",
        ]
    return lines


def _errors(result: Mapping[str, Any]) -> int:
    """An open-loop run's requests without a 2xx answer."""
    return int(result["non_2xx"] + result["timeouts"] + result["socket_errors"])


def _seconds(value: float | None) -> str:
    return "-" if value is None else format_seconds(value)


def target_table(targets: Sequence[Mapping[str, Any]]) -> list[str]:
    """The targets from :func:`target_entry` as a Markdown table, each marked pass or FAIL."""
    return markdown_table(
        ["Target", "Measured", "Required", "Result"],
        [
            [t["target"], t["measured"], t["required"], "pass" if t["passed"] else "FAIL"]
            for t in targets
        ],
    )


def result_row(workload: str, label: str, result: Mapping[str, Any]) -> list[str]:
    """A table row of one contender's medians: req/s, p50, p99 and errors."""
    errors = result["non_2xx"] + result["socket_errors"]
    return [
        workload,
        label,
        f"{result['requests_per_s']['median']:,.0f}",
        format_seconds(result["p50_s"]["median"]),
        format_seconds(result["p99_s"]["median"]),
        str(errors),
    ]
