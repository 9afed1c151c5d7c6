"""The cost of prediction capture on the serving path: capture at 100 % against capture off.

One Ferryman server (one process pinned to one core with ``taskset``; ``wrk``, one
thread, pinned to another) serves two endpoints on the same model, a
``StandardScaler + LogisticRegression`` pipeline on scikit-learn's breast-cancer data
(30 float columns):

- ``logged``: ``capture_sample_rate=1.0``, every request becomes a record in the
  prediction log (Parquet segments under ``FERRYMAN_HOME/logs``, written by the capture
  writer's background thread in the same process, on the same core);
- ``unlogged``: ``capture_sample_rate=0.0``, the writer samples every request out.

The benchmark first checks that both endpoints answer with the model's own
probabilities, then drives each with 1-row native requests at 16 connections: a warm-up
run each, then ``--rounds`` runs of ``--seconds``, the order reversed every other round,
with a pause after every run so that the writer's flush of what the run left buffered
is charged to that run. Figures are medians over rounds; the comparison is the median
of per-round ratios logged / unlogged. Beside wrk's figures, the server's CPU time (from
``/proc``, all threads) over each run and its pause, per request answered, says what a
request cost whatever share of its core the server got on a shared machine.

When ``py-spy`` is installed (it is in the development environment), the benchmark also
finds the capture writer's thread (``py-spy dump``) and reads that thread's own CPU time
over each run: the CPU the background writing costs per logged request and its share of
the server's CPU, which, unlike throughput, hardly depends on the machine's other load.
The writer's other cost, ``submit`` on the event loop, is about a microsecond (see
``bench/capture/writer_micro.py``).

After the runs the server is stopped (SIGTERM: the writer writes everything accepted)
and the log is read back: the ``logged`` endpoint must have one record per request it
answered with 200, the ``unlogged`` endpoint none.

The capture issue's target is reported as pass/fail: capture at 100 % costs at most 5 %
of the throughput with capture off. The exit status says only whether the benchmark ran.

Usage::

    python bench/capture/serving_overhead.py           # full run, about 2 minutes
    python bench/capture/serving_overhead.py --smoke   # 1 round of 1 s

Needs ``wrk`` (``apt-get install -y wrk``) and ``taskset``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import pandas as pd
from prometheus_client.parser import text_string_to_metric_families

if TYPE_CHECKING:
    from ferryman.config import Settings

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "bench" / "serving"), str(ROOT / "bench")]

from _report import machine_lines, markdown_table  # noqa: E402
from _requests import Target, native_body, probabilities_field  # noqa: E402
from _servers import (  # noqa: E402
    Server,
    Servers,
    clean_environment,
    free_port,
)
from _serving_report import result_row, target_entry, target_table  # noqa: E402
from _session import Run, breast_cancer, failed_contenders, parser  # noqa: E402
from _timing import median_ratio, summarize  # noqa: E402
from _wrk import Config, WrkResult, measure, summarize_runs  # noqa: E402

RESULT_FILE = "capture_serving_overhead.json"

#: The endpoints, in the order of even rounds; the second is the baseline.
CONTENDERS = ("logged", "unlogged")
BASELINE = "unlogged"
SAMPLE_RATES = {"logged": 1.0, "unlogged": 0.0}
LABELS = {"logged": "Capture at 100 %", "unlogged": "Capture off (sample rate 0)"}
MODEL = "cancer/1"
CONNECTIONS = 16
#: Requests sent to each endpoint before measuring, to check the answers.
CHECK_REQUESTS = 20
#: The issue's target: logged req/s at least this share of unlogged's (at most 5 % loss).
MIN_THROUGHPUT = 0.95

FULL = Config(rounds=6, seconds=5, warmup_seconds=2, pause_seconds=1.5)
SMOKE = Config(rounds=1, seconds=1, warmup_seconds=1, pause_seconds=1.5)


# -- setting up -------------------------------------------------------------------------------


def fit_model(X: pd.DataFrame, y: np.ndarray) -> Any:
    """Fit the pipeline on the array (so that it checks no column names)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X.to_numpy(), y)


def prepare_ferryman(home: Path, X: pd.DataFrame, y: np.ndarray, model: Any) -> None:
    """Register the model in a fresh home and create both endpoints on it."""
    from ferryman.registry import Registry
    from ferryman.serving import EndpointService

    with Registry.from_settings(_settings(home)) as registry:
        registry.register(model, name="cancer", X=X, y=y)
        endpoints = EndpointService(database=registry.database, user="bench")
        for name in CONTENDERS:
            endpoints.create(name, model=MODEL, capture_sample_rate=SAMPLE_RATES[name])


def _settings(home: Path) -> Settings:
    from ferryman.config import Settings

    return Settings(
        home=home, database_url=None, artifact_uri=None, user="bench", migrate_on_start=True
    )


# -- checking what the server does --------------------------------------------------------------


def check_answers(
    targets: Mapping[str, Target], rows: pd.DataFrame, model: Any, *, requests: int
) -> None:
    """POST ``requests`` requests to each endpoint; each must answer the model's probabilities.

    Raises:
        RuntimeError: An endpoint answered with an error or other probabilities.
    """
    expected = model.predict_proba(rows.to_numpy())
    with httpx.Client(timeout=30.0, headers={"content-type": "application/json"}) as client:
        for name, target in targets.items():
            for _ in range(requests):
                response = client.post(target.url, content=target.body(rows))
                if response.status_code != 200:
                    raise RuntimeError(
                        f"{name} answered {response.status_code} at {target.url}: "
                        f"{response.text[:500]}"
                    )
                answer = response.json()
                got = target.probabilities(answer)
                if got.shape != expected.shape or not np.allclose(got, expected, atol=1e-12):
                    raise RuntimeError(f"{name} answered other probabilities than {MODEL}:\n{got}")


def answered_requests(base_url: str) -> dict[str, int]:
    """Requests each endpoint answered with 200 so far, from ``GET /metrics``.

    Raises:
        RuntimeError: ``/metrics`` did not answer 200.
    """
    response = httpx.get(f"{base_url}/metrics", timeout=30.0)
    if response.status_code != 200:
        raise RuntimeError(f"GET /metrics answered {response.status_code}: {response.text[:500]}")
    answered = dict.fromkeys(CONTENDERS, 0)
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == "ferryman_requests_total"
                and labels.get("status") == "200"
                and labels.get("endpoint") in answered
            ):
                answered[labels["endpoint"]] += int(sample.value)
    return answered


def stored_records(home: Path) -> dict[str, int]:
    """Records in the prediction log per endpoint (read after the server stopped)."""
    from ferryman.capture import LogStore

    store = LogStore.from_settings(_settings(home))
    rows = store.query("SELECT endpoint, count(*) FROM predictions GROUP BY endpoint").rows
    counts = dict.fromkeys(CONTENDERS, 0)
    counts.update({str(endpoint): int(count) for endpoint, count in rows})
    return counts


# -- the figures --------------------------------------------------------------------------------


def cpu_seconds(stat: Path) -> float:
    """User plus system CPU seconds in a ``/proc`` ``stat`` file (a process's or a thread's)."""
    # The fields after the command name (which may hold spaces) start at the 3rd, state;
    # utime and stime are the 14th and 15th, in clock ticks.
    fields = stat.read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


#: The name of the capture writer's thread (``ferryman.capture.writer``).
CAPTURE_THREAD = "ferryman-capture"


def py_spy_path() -> str | None:
    """``py-spy`` beside this Python (the development environment) or on PATH, if any."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.is_file() else shutil.which("py-spy")


def capture_thread(pid: int) -> tuple[int | None, str | None]:
    """The OS thread id of the capture writer's thread in process ``pid``, found with py-spy.

    Returns:
        The thread id, or ``None`` and the reason it could not be found.
    """
    spy = py_spy_path()
    if spy is None:
        return None, "py-spy is not installed (pip install py-spy)"
    dumped = subprocess.run(
        [spy, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=60, check=False
    )
    found = re.search(rf'^Thread (\d+) \([^)]*\): "{CAPTURE_THREAD}"$', dumped.stdout, re.M)
    if found is None:
        reason = (dumped.stderr or dumped.stdout).strip()[-300:]
        return None, f"py-spy dump found no {CAPTURE_THREAD} thread: {reason}"
    return int(found.group(1)), None


class ServerCPU:
    """The server's CPU time over each run and the pause after it (``measure``'s ``on_run``).

    The pause lets the capture writer flush what the run left buffered, so that work is
    charged to the run that caused it. With the capture thread's id, that thread's own
    CPU time is kept too.

    Args:
        pid: The server's process id.
        capture_tid: The OS thread id of the capture writer's thread, or ``None``.
    """

    def __init__(self, pid: int, capture_tid: int | None = None) -> None:
        self.pid = pid
        self.capture_tid = capture_tid
        self.seconds: dict[str, list[float]] = {}
        self.capture_seconds: dict[str, list[float]] = {}
        self._last = self._now()

    def _now(self) -> tuple[float, float]:
        process = cpu_seconds(Path(f"/proc/{self.pid}/stat"))
        if self.capture_tid is None:
            return process, 0.0
        return process, cpu_seconds(Path(f"/proc/{self.pid}/task/{self.capture_tid}/stat"))

    def __call__(self, name: str, result: WrkResult | None) -> None:
        now = self._now()
        spent, capture = now[0] - self._last[0], now[1] - self._last[1]
        self._last = now
        if result is not None:
            self.seconds.setdefault(name, []).append(spent)
            self.capture_seconds.setdefault(name, []).append(capture)

    def per_request(self, name: str, runs: Sequence[WrkResult]) -> list[float]:
        """CPU seconds per request answered, for each measured run of ``name``."""
        return [spent / run.requests for spent, run in zip(self.seconds[name], runs, strict=True)]

    def capture_per_request(self, name: str, runs: Sequence[WrkResult]) -> list[float]:
        """The capture thread's CPU seconds per request answered, per measured run."""
        return [
            spent / run.requests
            for spent, run in zip(self.capture_seconds[name], runs, strict=True)
        ]

    def capture_share(self, name: str) -> list[float]:
        """The capture thread's share of the server's CPU time, per measured run."""
        return [
            capture / spent if spent else 0.0
            for capture, spent in zip(self.capture_seconds[name], self.seconds[name], strict=True)
        ]


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


def evaluate_targets(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Check the capture issue's target against the same-run ratio of throughput."""
    ratio = document["ratios"]["requests_per_s"]
    return [
        target_entry(
            f"{LABELS['logged']}: req/s vs capture off",
            f"{ratio:.3f}x",
            f">= {MIN_THROUGHPUT:g}x (at most 5 % loss)",
            ratio >= MIN_THROUGHPUT,
        )
    ]


def report_lines(document: Mapping[str, Any]) -> list[str]:
    """Render the results as Markdown: the machine, the figures, the ratios, the target."""
    config = document["config"]
    load = document["load_average"]
    workload = f"1 row x {document['connections']} conn"
    log = document["log"]
    return [
        f"## Capture overhead on serving ({'smoke' if document['smoke'] else 'full'} run)",
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
        f"after every run; one server, two endpoints on {MODEL}, native protocol:",
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
        "Same-run ratios, capture at 100 % / capture off (median of per-round ratios):",
        "",
        *markdown_table(
            ["req/s", "p50", "p99", "Server CPU / request"],
            [[f"{document['ratios'][figure]:.3f}" for figure in FIGURES]],
        ),
        "",
        *capture_thread_lines(document["capture_thread"]),
        f"Prediction log after the server stopped: {log['stored']['logged']:,} records of "
        f"{log['answered']['logged']:,} requests answered by `logged`, "
        f"{log['stored']['unlogged']:,} of {log['answered']['unlogged']:,} by `unlogged`.",
        "",
        "Target:",
        "",
        *target_table(document["targets"]),
    ]


def capture_thread_lines(thread: Mapping[str, Any]) -> list[str]:
    """What the capture writer's thread cost, or why it was not measured."""
    if thread["skipped"] is not None:
        return [f"Capture thread not measured: {thread['skipped']}.", ""]
    logged = thread["logged"]
    return [
        f"Capture writer thread, `logged` runs (medians): "
        f"{logged['cpu_per_request_s']['median'] * 1e6:.1f} µs CPU per request, "
        f"{logged['share_of_server_cpu']['median']:.1%} of the server's CPU "
        f"(`unlogged`: {thread['unlogged']['share_of_server_cpu']['median']:.1%}).",
        "",
    ]


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
    model = fit_model(X, y)
    with run.servers("ferryman-bench-capture-") as (workdir, servers):
        results = _run(
            run.config,
            X,
            y,
            model,
            workdir=workdir,
            servers=servers,
            wrk_cpu=run.wrk_cpu,
            progress=run.progress,
        )
    document = run.document("capture-serving-overhead", results)
    document["targets"] = evaluate_targets(document)
    run.write(RESULT_FILE, document, report_lines(document))
    failed = failed_contenders(document["results"])
    if failed:
        print(f"error: error responses from {', '.join(failed)}", file=sys.stderr)
        return 1
    log = document["log"]
    if log["stored"] != {"logged": log["answered"]["logged"], "unlogged": 0}:
        print(
            f"error: the prediction log holds {log['stored']} records for "
            f"{log['answered']} requests answered; expected one per request of logged "
            "and none of unlogged",
            file=sys.stderr,
        )
        return 1
    return 0


def _run(
    config: Config,
    X: pd.DataFrame,
    y: np.ndarray,
    model: Any,
    *,
    workdir: Path,
    servers: Servers,
    wrk_cpu: int | None,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    home = workdir / "ferryman-home"
    progress(f"registering {MODEL}, creating the endpoints {', '.join(CONTENDERS)}")
    prepare_ferryman(home, X, y, model)
    progress("starting the server")
    server = _start(servers, home, workdir)
    targets = {
        name: Target(f"{server.url}/v1/endpoints/{name}/predict", native_body, probabilities_field)
        for name in CONTENDERS
    }
    rows = X.iloc[:1]
    check_answers(targets, rows, model, requests=CHECK_REQUESTS)
    capture_tid, skipped = capture_thread(server.process.pid)
    progress(f"1 row x {CONNECTIONS} conn: {', '.join(targets)}")
    server_cpu = ServerCPU(server.process.pid, capture_tid)
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
    answered = answered_requests(server.url)
    progress("stopping the server (SIGTERM) and reading the prediction log")
    server.stop()
    stored = stored_records(home)
    per_run = {name: figures(runs[name], server_cpu.per_request(name, runs[name])) for name in runs}
    return {
        "connections": CONNECTIONS,
        "rows": len(rows),
        "sample_rates": SAMPLE_RATES,
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
        "ratios": {
            figure: median_ratio(per_run["logged"][figure], per_run[BASELINE][figure])
            for figure in FIGURES
        },
        "log": {"answered": answered, "stored": stored},
        "capture_thread": {
            "skipped": skipped,
            **{
                name: {
                    "cpu_per_request_s": summarize(
                        server_cpu.capture_per_request(name, runs[name])
                    ).to_dict(),
                    "share_of_server_cpu": summarize(server_cpu.capture_share(name)).to_dict(),
                }
                for name in runs
                if skipped is None
            },
        },
    }


def _start(servers: Servers, home: Path, workdir: Path) -> Server:
    port = free_port()
    return servers.start(
        "ferryman",
        [sys.executable, "-m", "ferryman.cli.serve", "--host", "127.0.0.1", "--port", str(port)],
        port=port,
        ready_path="/readyz",
        env=clean_environment(FERRYMAN_HOME=str(home), FERRYMAN_USER="bench"),
        cwd=workdir,
    )


def _parser() -> argparse.ArgumentParser:
    return parser(
        "Measure Ferryman's serving path with prediction capture at 100 % "
        "against capture off, with wrk.",
        RESULT_FILE,
        FULL,
        SMOKE,
        "1 round of 1 s; results go to a temporary directory unless --output-dir is given",
    )


if __name__ == "__main__":
    sys.exit(main())
