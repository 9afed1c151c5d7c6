"""The cost of a rollout on the serving path: canary and shadow against no rollout, with wrk.

One Ferryman server (one process pinned to one core with ``taskset``; ``wrk``, one
thread, pinned to another) serves three endpoints, all on the same model: a
``StandardScaler + LogisticRegression`` pipeline on scikit-learn's breast-cancer data
(30 float columns), registered twice as ``cancer/1`` and ``cancer/2`` (the second fitted
with ``C=0.1``). Measured in the same run, interleaved round by round:

- ``plain``: ``cancer/1``, no rollout;
- ``canary``: a canary rollout to ``cancer/2`` held at its 50 % step (a one-day bake, no
  gates), so half the requests are served by each version, each on its own model thread;
- ``shadow``: a shadow rollout to ``cancer/2`` mirroring 100 % of requests; callers are
  answered by ``cancer/1`` and every request is copied to ``cancer/2`` after the answer.

The rollouts are started in the store before the server starts, so its first loading
pass loads both versions; the benchmark checks over HTTP that both rollouts are running
and that a few answers of the canary come from each version (each answer checked against
the probabilities of the version that gave it), then drives each endpoint with 1-row
native requests at 16 connections: a warm-up run each, then ``--rounds`` runs of
``--seconds``, the order reversed every other round, with a pause after every run so that
shadow copies still queued are served before the next run. Figures are medians over
rounds; comparisons are medians of per-round ratios to ``plain``. Beside wrk's figures,
the server's CPU time (from ``/proc``) over each run and its pause, per request answered,
says what each request cost whatever share of its core the server got on a shared
machine. After the runs, the server's own counters tell how many shadow copies were
completed and how many were not (dropped from the full queue, or failed).

The targets of the rollout issue are reported as pass/fail: at most 5 % fewer requests
per second for canary routing, and at most 10 % more p50 latency on the primary path
with a shadow. The exit status says only whether the benchmark ran.

Usage::

    python bench/serving/rollouts.py           # full run, about 2 minutes
    python bench/serving/rollouts.py --smoke   # 1 round of 1 s

Needs ``wrk`` (``apt-get install -y wrk``) and ``taskset``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import pandas as pd
from prometheus_client.parser import text_string_to_metric_families

if TYPE_CHECKING:
    from ferryman.config import Settings

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(ROOT / "bench")]

from _report import (  # noqa: E402
    machine_lines,
    markdown_table,
)
from _requests import Target, native_body, probabilities_field  # noqa: E402
from _servers import (  # noqa: E402
    ServerCPU,
    Servers,
    clean_environment,
    free_port,
)
from _serving_report import result_row, target_entry, target_table  # noqa: E402
from _session import Run, breast_cancer, failed_contenders, parser  # noqa: E402
from _timing import median_ratio, summarize  # noqa: E402
from _wrk import Config, WrkResult, measure, summarize_runs  # noqa: E402

RESULT_FILE = "serving_rollouts.json"

#: The endpoints, in the order of even rounds; the first is the baseline.
CONTENDERS = ("plain", "canary", "shadow")
BASELINE = "plain"
LABELS = {
    "plain": "No rollout",
    "canary": "Canary, 50/50",
    "shadow": "Shadow, 100 % mirrored",
}
STABLE = "cancer/1"
CANDIDATE = "cancer/2"
#: The candidate's regularisation, so that its probabilities differ from the stable's.
CANDIDATE_C = 0.1
CONNECTIONS = 16
CANARY_STEPS = (50.0, 100.0)
#: Long enough that no rollout moves during the run.
BAKE_SECONDS = 86_400.0
SHADOW_SAMPLE = 1.0
#: Requests sent to each endpoint before measuring, to see which versions answer.
CHECK_REQUESTS = 40
#: The issue's targets: canary req/s at least this share of plain's ...
CANARY_MIN_THROUGHPUT = 0.95
#: ... and shadow p50 at most this multiple of plain's.
SHADOW_MAX_P50 = 1.10
#: Seconds between two reads of the server's counters while waiting for them to settle
#: (the monitoring recorder is drained once a second).
SETTLE_READ_SECONDS = 1.5
SETTLE_MAX_READS = 20

FULL = Config(rounds=6, seconds=5, warmup_seconds=2, pause_seconds=1.0)
SMOKE = Config(rounds=1, seconds=1, warmup_seconds=1, pause_seconds=1.0)


# -- setting up -------------------------------------------------------------------------------


def fit_models(X: pd.DataFrame, y: np.ndarray) -> dict[str, Any]:
    """Fit the stable and the candidate pipeline on the array (no column-name checks)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    array = X.to_numpy()
    return {
        STABLE: make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(array, y),
        CANDIDATE: make_pipeline(
            StandardScaler(), LogisticRegression(C=CANDIDATE_C, max_iter=1000)
        ).fit(array, y),
    }


def prepare_ferryman(home: Path, X: pd.DataFrame, y: np.ndarray, models: Mapping[str, Any]) -> None:
    """Register both versions in a fresh home, create the endpoints, start the rollouts.

    Every endpoint serves ``cancer/1``; ``canary`` and ``shadow`` get their rollout to
    ``cancer/2`` here, before any server runs, so the server loads both versions at start.
    """
    from ferryman.registry import Registry
    from ferryman.rollout.base import RolloutOptions
    from ferryman.rollout.service import RolloutService
    from ferryman.serving import EndpointService

    with Registry.from_settings(_settings(home)) as registry:
        for ref in (STABLE, CANDIDATE):
            registry.register(models[ref], name="cancer", X=X, y=y)
        endpoints = EndpointService(database=registry.database, user="bench")
        for name in CONTENDERS:
            endpoints.create(name, model=STABLE)
        rollouts = RolloutService(registry=registry, user="bench")
        rollouts.start(
            "canary",
            CANDIDATE,
            strategy="canary",
            options=RolloutOptions(steps=CANARY_STEPS, bake_seconds=BAKE_SECONDS),
        )
        rollouts.start(
            "shadow",
            CANDIDATE,
            strategy="shadow",
            options=RolloutOptions(sample=SHADOW_SAMPLE, bake_seconds=BAKE_SECONDS),
        )


def _settings(home: Path) -> Settings:
    from ferryman.config import Settings

    return Settings(
        home=home, database_url=None, artifact_uri=None, user="bench", migrate_on_start=True
    )


# -- checking what the server does --------------------------------------------------------------


def rollout_states(base_url: str) -> dict[str, dict[str, Any]]:
    """Read ``GET /v1/rollouts/{endpoint}`` of the canary and the shadow; check both run.

    Returns:
        Each rollout's strategy, phase, stable and candidate version, and traffic split.

    Raises:
        RuntimeError: A rollout is missing, not running, or splits traffic otherwise than
            the benchmark set it up to.
    """
    wanted = {
        "canary": {
            "stable": 100.0 - CANARY_STEPS[0],
            "candidate": CANARY_STEPS[0],
            "mirrored": 0.0,
        },
        "shadow": {"stable": 100.0, "candidate": 0.0, "mirrored": SHADOW_SAMPLE},
    }
    states: dict[str, dict[str, Any]] = {}
    for endpoint, traffic in wanted.items():
        response = httpx.get(f"{base_url}/v1/rollouts/{endpoint}", timeout=30.0)
        if response.status_code != 200:
            raise RuntimeError(
                f"GET /v1/rollouts/{endpoint} answered {response.status_code}: "
                f"{response.text[:500]}"
            )
        status = response.json()
        state = {
            key: status[key] for key in ("strategy", "phase", "stable", "candidate", "traffic")
        }
        expected = {
            "strategy": endpoint,
            "phase": "running",
            "stable": STABLE,
            "candidate": CANDIDATE,
            "traffic": traffic,
        }
        if state != expected:
            raise RuntimeError(
                f"The {endpoint} rollout is {state!r}; the benchmark expected {expected!r}"
            )
        states[endpoint] = state
    return states


def check_versions(
    targets: Mapping[str, Target],
    rows: pd.DataFrame,
    models: Mapping[str, Any],
    *,
    requests: int = CHECK_REQUESTS,
) -> dict[str, dict[str, int]]:
    """POST ``requests`` requests to each endpoint; check who answers, and with what.

    Each answer's probabilities must be those of the version it names; ``plain`` and
    ``shadow`` must answer from ``cancer/1`` only, ``canary`` from both versions.

    Returns:
        Per endpoint, how many answers each version gave.

    Raises:
        RuntimeError: An endpoint answered with an error, other probabilities than the
            version it names, or from other versions than expected.
    """
    expected = {ref: model.predict_proba(rows.to_numpy()) for ref, model in models.items()}
    answered: dict[str, dict[str, int]] = {}
    with httpx.Client(timeout=30.0, headers={"content-type": "application/json"}) as client:
        for name, target in targets.items():
            versions: Counter[str] = Counter()
            for _ in range(requests):
                response = client.post(target.url, content=target.body(rows))
                if response.status_code != 200:
                    raise RuntimeError(
                        f"{name} answered {response.status_code} at {target.url}: "
                        f"{response.text[:500]}"
                    )
                answer = response.json()
                version = answer.get("model_version")
                if version not in expected:
                    raise RuntimeError(f"{name} answered from unknown version {version!r}")
                got = target.probabilities(answer)
                want = expected[version]
                if got.shape != want.shape or not np.allclose(got, want, rtol=1e-9, atol=1e-12):
                    raise RuntimeError(
                        f"{name} answered other probabilities than {version}:\n{got}"
                    )
                versions[version] += 1
            wanted = {STABLE, CANDIDATE} if name == "canary" else {STABLE}
            if set(versions) != wanted:
                raise RuntimeError(
                    f"{name} answered {requests} requests from {dict(versions)}; the "
                    f"benchmark expected answers from {', '.join(sorted(wanted))}"
                )
            answered[name] = dict(sorted(versions.items()))
    return answered


def read_counters(base_url: str) -> dict[str, float]:
    """Read the server's request and shadow counters from ``GET /metrics``.

    Returns:
        ``shadow_primary``: requests the ``shadow`` endpoint answered with 200 (each
        mirrored, at a sample of 1.0); ``shadow_completed``: rows the candidate predicted
        on its copies (one per 1-row request); ``canary_requests`` and
        ``canary_candidate``: requests the ``canary`` endpoint answered with 200, all and
        from the candidate.

    Raises:
        RuntimeError: ``/metrics`` did not answer 200.
    """
    response = httpx.get(f"{base_url}/metrics", timeout=30.0)
    if response.status_code != 200:
        raise RuntimeError(f"GET /metrics answered {response.status_code}: {response.text[:500]}")
    counters = dict.fromkeys(
        ("shadow_primary", "shadow_completed", "canary_requests", "canary_candidate"), 0.0
    )
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "ferryman_requests_total" and labels.get("status") == "200":
                if labels.get("endpoint") == "shadow":
                    counters["shadow_primary"] += sample.value
                elif labels.get("endpoint") == "canary":
                    counters["canary_requests"] += sample.value
                    if labels.get("version") == CANDIDATE:
                        counters["canary_candidate"] += sample.value
            elif (
                sample.name == "ferryman_prediction_rows_total"
                and labels.get("endpoint") == "shadow"
                and labels.get("role") == "shadow"
            ):
                counters["shadow_completed"] += sample.value
    return counters


def settled_counters(base_url: str) -> dict[str, float]:
    """Read the counters until two reads :data:`SETTLE_READ_SECONDS` apart agree.

    Shadow copies still queued are served after the load stops, and the monitoring
    recorder publishes what it saw once a second; waiting for the counts to stop moving
    makes "not completed" mean dropped or failed, not late.

    Raises:
        RuntimeError: They still moved after :data:`SETTLE_MAX_READS` reads.
    """
    previous = read_counters(base_url)
    for _ in range(SETTLE_MAX_READS):
        time.sleep(SETTLE_READ_SECONDS)
        current = read_counters(base_url)
        if current == previous:
            return current
        previous = current
    raise RuntimeError(
        f"The server's counters still moved after {SETTLE_MAX_READS} reads "
        f"{SETTLE_READ_SECONDS} s apart; last read: {previous}"
    )


def stored_shadow_requests(home: Path, since: datetime) -> int:
    """Shadow copies the candidate answered, from the windowed metrics in the store.

    Every server process flushes its windowed metrics to the store each second; this
    counts the ``shadow`` endpoint's requests of role ``shadow`` from ``since`` on.
    """
    from ferryman.monitoring.base import WindowSelector
    from ferryman.monitoring.source import StoreMetricSource
    from ferryman.registry import Registry

    # A window takes the buckets (10 s by default) that start in it: begin well before.
    selector = WindowSelector(
        endpoint="shadow",
        since=since - timedelta(minutes=1),
        until=datetime.now(UTC) + timedelta(minutes=1),
        role="shadow",
    )
    with Registry.from_settings(_settings(home)) as registry:
        measured = StoreMetricSource(registry.database).measure("request_count", {}, selector)
    return measured.samples


# -- the figures --------------------------------------------------------------------------------


#: The figures compared with the baseline, per run: wrk's and the server's CPU per request.
FIGURES = ("requests_per_s", "p50_s", "p99_s", "server_cpu_per_request_s")


def figures(runs: Sequence[WrkResult], cpu_per_request: Sequence[float]) -> dict[str, list[float]]:
    """Each figure of :data:`FIGURES`, per measured run."""
    return {
        "requests_per_s": [run.requests_per_s for run in runs],
        "p50_s": [run.p50_s for run in runs],
        "p99_s": [run.p99_s for run in runs],
        "server_cpu_per_request_s": list(cpu_per_request),
    }


def ratios(per_run: Mapping[str, Mapping[str, Sequence[float]]], name: str) -> dict[str, float]:
    """Median per-round ratios of each of ``name``'s figures to the baseline's."""
    return {
        figure: median_ratio(per_run[name][figure], per_run[BASELINE][figure]) for figure in FIGURES
    }


def evaluate_targets(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Check the rollout issue's targets against the same-run ratios."""
    throughput = document["ratios"]["canary"]["requests_per_s"]
    p50 = document["ratios"]["shadow"]["p50_s"]
    return [
        target_entry(
            f"{LABELS['canary']}: req/s vs no rollout",
            f"{throughput:.3f}x",
            f">= {CANARY_MIN_THROUGHPUT:g}x (at most 5 % loss)",
            throughput >= CANARY_MIN_THROUGHPUT,
        ),
        target_entry(
            f"{LABELS['shadow']}: p50 vs no rollout",
            f"{p50:.3f}x",
            f"<= {SHADOW_MAX_P50:g}x (at most 10 % more)",
            p50 <= SHADOW_MAX_P50,
        ),
    ]


def report_lines(document: Mapping[str, Any]) -> list[str]:
    """Render the results as Markdown: the machine, the figures, the ratios, the targets."""
    config = document["config"]
    load = document["load_average"]
    workload = f"1 row x {document['connections']} conn"
    mirroring = document["mirroring"]
    canary = document["canary_split"]
    lines = [
        f"## Serving during rollouts ({'smoke' if document['smoke'] else 'full'} run)",
        "",
        f"`{document['command']}` at {document['started_at']}",
        "",
        *machine_lines(document["machine"]),
        f"- Server on core {document['cpus']['server']}, wrk (1 thread) on core "
        f"{document['cpus']['wrk']}; 1-minute load average {load['start']:.1f} at the start, "
        f"{load['end']:.1f} at the end",
        "",
        f"Median of {config['rounds']} interleaved rounds of {config['seconds']} s each, "
        f"after {config['warmup_seconds']} s of warm-up, {config['pause_seconds']:g} s pause "
        f"after every run; one server, three endpoints on the same model ({STABLE}; "
        f"candidate {CANDIDATE}), native protocol:",
        "",
        *markdown_table(
            ["Workload", "Endpoint", "req/s", "p50", "p99", "Errors", "Server CPU / request"],
            [
                [
                    *result_row(workload, LABELS[name], result),
                    f"{result['server_cpu_per_request_s']['median'] * 1e6:.0f} µs",
                ]
                for name, result in document["results"].items()
            ],
        ),
        "",
        "Same-run ratios to no rollout (median of per-round ratios):",
        "",
        *markdown_table(
            ["Endpoint", "req/s", "p50", "p99", "Server CPU / request"],
            [
                [LABELS[name], *(f"{ratio[figure]:.3f}" for figure in FIGURES)]
                for name, ratio in document["ratios"].items()
            ],
        ),
        "",
        f"Canary split over the whole run: {canary['candidate']:,} of {canary['requests']:,} "
        f"requests served by {CANDIDATE} ({canary['candidate_share']:.1%}).",
        "",
        f"Shadow copies over the whole run (warm-up included; queue of "
        f"{mirroring['queue_size']:,}): {mirroring['mirrored']:,} mirrored, "
        f"{mirroring['completed']:,} completed by {CANDIDATE}, {mirroring['not_completed']:,} "
        f"not completed (dropped or failed), {mirroring['completed_share']:.1%} completed; "
        f"the store's windowed metrics count {mirroring['stored_shadow_requests']:,} "
        "shadow requests.",
        "",
        "Targets:",
        "",
        *target_table(document["targets"]),
    ]
    return lines


# -- entry point --------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the report and write the JSON; return the exit status."""
    args = _parser().parse_args(argv)
    run = Run(args, FULL, SMOKE)
    problem = run.missing_tool()
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    X, y = breast_cancer()
    models = fit_models(X, y)
    with run.servers("ferryman-bench-rollouts-") as (workdir, servers):
        results = _run(
            run.config,
            X,
            y,
            models,
            workdir=workdir,
            servers=servers,
            since=run.started,
            wrk_cpu=run.wrk_cpu,
            progress=run.progress,
        )
    document = run.document("serving-rollouts", results)
    document["targets"] = evaluate_targets(document)
    run.write(RESULT_FILE, document, report_lines(document))
    failed = failed_contenders(document["results"])
    if failed:
        print(f"error: error responses from {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _run(
    config: Config,
    X: pd.DataFrame,
    y: np.ndarray,
    models: Mapping[str, Any],
    *,
    workdir: Path,
    servers: Servers,
    since: datetime,
    wrk_cpu: int | None,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    from ferryman.config import Settings

    home = workdir / "ferryman-home"
    progress(f"registering {STABLE} and {CANDIDATE}, starting the canary and shadow rollouts")
    prepare_ferryman(home, X, y, models)
    progress("starting the server")
    port = free_port()
    server = servers.start(
        "ferryman",
        [sys.executable, "-m", "ferryman.cli.serve", "--host", "127.0.0.1", "--port", str(port)],
        port=port,
        ready_path="/readyz",
        env=clean_environment(FERRYMAN_HOME=str(home), FERRYMAN_USER="bench"),
        cwd=workdir,
    )
    states = rollout_states(server.url)
    targets = {
        name: Target(
            f"{server.url}/v1/endpoints/{name}/predict",
            native_body,
            probabilities_field,
        )
        for name in CONTENDERS
    }
    rows = X.iloc[:1]
    answered = check_versions(targets, rows, models)
    progress(f"answers by version: {answered}")
    progress(f"1 row x {CONNECTIONS} conn: {', '.join(targets)}")
    server_cpu = ServerCPU(server.process.pid)
    runs = measure(
        targets,
        rows,
        CONNECTIONS,
        config,
        workdir=workdir,
        cpu=wrk_cpu,
        progress=progress,
        on_run=server_cpu,
    )
    per_run = {name: figures(runs[name], server_cpu.per_request(name, runs[name])) for name in runs}
    progress("waiting for the server's counters to settle")
    counters = settled_counters(server.url)
    stored = stored_shadow_requests(home, since)
    mirrored = int(counters["shadow_primary"])
    completed = int(counters["shadow_completed"])
    canary_requests = int(counters["canary_requests"])
    canary_candidate = int(counters["canary_candidate"])
    return {
        "connections": CONNECTIONS,
        "rows": len(rows),
        "rollouts": states,
        "answers_by_version": answered,
        "results": {
            name: {
                **summarize_runs(runs[name]),
                "server_cpu_s": server_cpu.seconds[name],
                "server_cpu_per_request_s": summarize(
                    per_run[name]["server_cpu_per_request_s"]
                ).to_dict(),
            }
            for name in runs
        },
        "ratios": {name: ratios(per_run, name) for name in CONTENDERS if name != BASELINE},
        "canary_split": {
            "requests": canary_requests,
            "candidate": canary_candidate,
            "candidate_share": canary_candidate / canary_requests if canary_requests else 0.0,
        },
        "mirroring": {
            "queue_size": Settings.model_fields["mirror_queue_size"].default,
            "mirrored": mirrored,
            "completed": completed,
            "not_completed": mirrored - completed,
            "completed_share": completed / mirrored if mirrored else 0.0,
            "stored_shadow_requests": stored,
        },
    }


def _parser() -> argparse.ArgumentParser:
    return parser(
        "Measure Ferryman's serving path during a canary and a shadow rollout "
        "against the same endpoint with no rollout, with wrk.",
        RESULT_FILE,
        FULL,
        SMOKE,
        "1 round of 1 s; results go to a temporary directory unless --output-dir is given",
    )


if __name__ == "__main__":
    sys.exit(main())
