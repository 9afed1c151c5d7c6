"""The serving benchmark: Ferryman's HTTP server against MLServer and a bare floor, with wrk.

Each server runs in one process pinned to one core (``taskset``); ``wrk`` (one thread)
runs pinned to another, so the server has a whole core to itself. The model is a
``StandardScaler + LogisticRegression`` pipeline on scikit-learn's breast-cancer data
(30 float columns), one fitted object registered in Ferryman and saved with joblib for
the others. Measured in the same run, with the contenders interleaved round by round:

- ``ferryman-native``: ``POST /v1/endpoints/cancer/predict`` with
  ``{"instances": [{column: value, ...}]}``;
- ``ferryman-v2``: ``POST /v2/models/cancer/infer`` (Open Inference Protocol V2), one
  FP64 input per column, as the model's table signature advertises;
- ``mlserver``: Seldon MLServer 1.7 (``mlserver-sklearn``, one process,
  ``parallel_workers: 0``) with one FP64 tensor ``[n, 30]``, asking for ``predict_proba``;
- ``floor``: ``floor_app.py``, one Starlette route that parses JSON with orjson and calls
  ``predict_proba`` inline (uvicorn, uvloop, httptools, one process).

Workloads: 1-row requests at 1, 16 and 64 connections and 32-row requests at 16. Then
micro-batching: a ``HistGradientBoostingClassifier`` served by two Ferryman endpoints,
one with ``max_batch_size=32, max_latency_ms=5`` and one unbatched, at 64 connections,
next to the model's own time for ``predict_proba`` on 32 rows; then both endpoints
open-loop (``_open_loop.py``, Poisson arrivals, sent by ``openloop.c``) at half the
unbatched closed-loop capacity, and the batched one at half its own, with the server's
``/metrics`` histograms of queue and compute time read around each run, and the generator
run again at each rate against ``echo_app.py`` (a server that answers at once), for the
latency the generator and the machine add. A closed loop keeps the p99 above
``64 / throughput`` (Little's law), so the p99 target is judged on the open-loop runs.

Last, where micro-batching pays: the same closed-loop comparison on two more histogram
gradient boosting models fitted on generated data (:data:`SWEEP`), one with 300 trees
(compiled, like the first) and one with categorical splits (served by scikit-learn's own
predictor, about a millisecond per call), next to Ferryman's own model call time on 1
and 32 rows. Batching saves the model calls, so it pays in proportion to a call's cost
against the HTTP handling every request needs anyway.

Every contender's answer is checked once against the model's own probabilities before it
is measured. Each (workload, contender) gets a warm-up run, then ``--rounds`` measured
runs of ``--seconds``, the order reversed every other round; figures are medians over
rounds and ratios are medians of per-round ratios. The targets of the serving issue are
reported as pass/fail; the exit status says only whether the benchmark ran.

Usage::

    python bench/serving/throughput.py           # full run, about 10 minutes
    python bench/serving/throughput.py --smoke   # 1 round of 1 s; MLServer only if installed

Needs ``wrk`` (``apt-get install -y wrk``), ``taskset`` and a C compiler (for
``openloop.c``); creates the MLServer environment (``.venv-peers/mlserver``) in a full
run when it is missing.
"""

from __future__ import annotations

import argparse
import gc
import math
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import orjson
import pandas as pd
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(ROOT / "bench")]

import _mlserver  # noqa: E402
import _open_loop  # noqa: E402
from _open_loop import OpenLoopResult  # noqa: E402
from _report import format_seconds  # noqa: E402
from _requests import (  # noqa: E402
    Target,
    ferryman_v2_body,
    floor_body,
    native_body,
    probabilities_field,
    tensor_v2_body,
    v2_probabilities,
)
from _servers import ServerCPU, Servers, clean_environment, free_port  # noqa: E402
from _serving_report import RATIOS, evaluate_targets, report_lines  # noqa: E402
from _session import Run, breast_cancer, parser  # noqa: E402
from _wrk import (  # noqa: E402
    Config,
    WrkResult,
    measure,
    summarize_runs,
    throughput_ratio,
    wrk_path,
)

FLOOR_APP = HERE / "floor_app.py"
ECHO_APP = HERE / "echo_app.py"
RESULT_FILE = "serving.json"

#: The contenders on the logistic regression, in the order of even rounds.
CONTENDERS = ("ferryman-native", "ferryman-v2", "mlserver", "floor")
MAX_BATCH_SIZE = 32
MAX_LATENCY_MS = 5.0
BATCH_CONNECTIONS = 64


def batch_endpoints(endpoint: str) -> dict[str, str]:
    """Each micro-batching contender's endpoint: ``ENDPOINT-batched`` and ``ENDPOINT``."""
    return {"batched": f"{endpoint}-batched", "unbatched": endpoint}


#: The endpoint each micro-batching contender of the main model posts to.
BATCH_ENDPOINTS = batch_endpoints("hgb")
#: Micro-batching on models whose one-row call costs more (where batching pays), each
#: served by an unbatched endpoint ``NAME`` and a batched ``NAME-batched``: what each is.
SWEEP = {
    "hgb-300": "HistGradientBoostingClassifier(max_iter=300, early_stopping=False)",
    "hgb-categorical": "HistGradientBoostingClassifier(categorical_features=[0, 1])",
}
#: Registration options: the categorical model holds a ``functools.partial``, which skops
#: loads only when told to trust it (our own model, fitted in this run).
SWEEP_OPTIONS = {"hgb-categorical": {"trusted_types": ["functools.partial"]}}
#: Rows of the generated data the sweep's models are fitted on.
SWEEP_ROWS = 10_000
#: Open-loop rates, as a fraction of a closed-loop capacity measured in the same run.
OPEN_LOOP_LOAD = 0.5
OPEN_LOOP_SEED = 0
#: The server's histograms of a model call read around each open-loop run.
SERVER_HISTOGRAMS = {"queue_s": "ferryman_queue_seconds", "compute_s": "ferryman_compute_seconds"}
#: Seconds between reads of ``/metrics`` until two agree, and the most reads: requests
#: a closed-loop run left queued are still served after it, and a request is recorded
#: once its response is sent, a moment after the generator has read it.
METRICS_SETTLE_S = 0.2
METRICS_SETTLE_READS = 100


@dataclass(frozen=True)
class Workload:
    """Requests of ``rows`` rows over ``connections`` connections."""

    rows: int
    connections: int

    @property
    def name(self) -> str:
        """E.g. ``1 row x 16 conn``."""
        return f"{self.rows} row{'s' if self.rows > 1 else ''} x {self.connections} conn"


WORKLOADS = (Workload(1, 1), Workload(1, 16), Workload(1, 64), Workload(32, 16))


FULL = Config(rounds=6, seconds=5, warmup_seconds=2)
SMOKE = Config(rounds=1, seconds=1, warmup_seconds=1)


# -- measurement ------------------------------------------------------------------------------


def check_answers(targets: Mapping[str, Target], rows: pd.DataFrame, expected: np.ndarray) -> None:
    """POST one request to each contender and compare its probabilities with ``expected``.

    Raises:
        RuntimeError: A contender answered with an error or other probabilities.
    """
    for name, target in targets.items():
        response = httpx.post(
            target.url,
            content=target.body(rows),
            headers={"content-type": "application/json"},
            timeout=30.0,
        )
        if response.status_code != 200:
            raise RuntimeError(
                f"{name} answered {response.status_code} at {target.url}: {response.text[:500]}"
            )
        got = target.probabilities(response.json())
        if got.shape != expected.shape or not np.allclose(got, expected, rtol=1e-9, atol=1e-12):
            raise RuntimeError(f"{name} answered other probabilities than the model:\n{got}")


#: What both timers run once their setup has defined ``call(x)`` and ``rows``.
_TIMING_LOOP = (
    "def median(x):\n"
    "    for _ in range(20): call(x)\n"
    "    runs = []\n"
    "    for _ in range(200):\n"
    "        start = time.perf_counter(); call(x)\n"
    "        runs.append(time.perf_counter() - start)\n"
    "    return statistics.median(runs)\n"
    "print(json.dumps({'batch_s': median(rows), 'one_row_s': median(rows[:1])}))\n"
)


def _timed_in_fresh_process(
    setup: str, args: Sequence[str], rows: np.ndarray, rows_file: Path, cpu: int | None
) -> dict[str, float]:
    """Time ``call`` on ``rows`` and on their first row in a fresh process pinned to ``cpu``.

    ``setup`` defines ``call(x)`` and ``rows``; it sees ``args`` as ``sys.argv[1:]``,
    followed by ``rows_file``, where ``rows`` are saved.

    Returns:
        ``batch_s`` and ``one_row_s``: the median of 200 calls on all rows and on one
        row, in seconds (after 20 unmeasured calls).
    """
    np.save(rows_file, rows)
    code = "import json, statistics, sys, time, numpy as np\n" + setup + _TIMING_LOOP
    command = [sys.executable, "-c", code, *args, str(rows_file)]
    if cpu is not None:
        command = ["taskset", "--cpu-list", str(cpu), *command]
    completed = subprocess.run(command, capture_output=True, text=True, check=True, timeout=300)
    timings: dict[str, float] = orjson.loads(completed.stdout.strip().splitlines()[-1])
    return timings


def batch_time(model_file: Path, rows: np.ndarray, cpu: int | None) -> dict[str, float]:
    """Time scikit-learn's ``predict_proba`` on ``rows`` and on one row, in a fresh process."""
    setup = (
        "import joblib\n"
        "call = joblib.load(sys.argv[1]).predict_proba\n"
        "rows = np.load(sys.argv[2])\n"
    )
    return _timed_in_fresh_process(
        setup, [str(model_file)], rows, model_file.with_suffix(".rows.npy"), cpu
    )


def call_time(home: Path, ref: str, rows: np.ndarray, cpu: int | None) -> dict[str, float]:
    """Time Ferryman's own model call for version ``ref`` on ``rows`` and on one row.

    This is what a server calls per batch (the flavor's ``predict``: labels and
    probabilities, through the compiled path where the model has one), on a C-ordered
    float64 array as validation hands it over. One row is a row of that array, which
    stays contiguous (``rows[:1]``).
    """
    setup = (
        "from pathlib import Path\n"
        "from ferryman.config import Settings\n"
        "from ferryman.registry import Registry\n"
        "settings = Settings(home=Path(sys.argv[1]), database_url=None, artifact_uri=None,\n"
        "                    user='bench', migrate_on_start=False)\n"
        "with Registry.from_settings(settings) as registry:\n"
        "    call = registry.load(sys.argv[2]).model.predict\n"
        "rows = np.ascontiguousarray(np.load(sys.argv[3]), dtype=np.float64)\n"
    )
    rows_file = home / f"{ref.replace('/', '-')}.rows.npy"
    return _timed_in_fresh_process(setup, [str(home), ref], rows, rows_file, cpu)


def read_histograms(base_url: str, endpoint: str) -> dict[str, dict[float, float]]:
    """Read the cumulative buckets of the server's model-call histograms for ``endpoint``.

    Returns:
        For each key of :data:`SERVER_HISTOGRAMS`, the count of observations at or
        below each upper bound in seconds (``math.inf`` included); empty before the
        endpoint's first model call.

    Raises:
        RuntimeError: ``/metrics`` did not answer 200.
    """
    response = httpx.get(f"{base_url}/metrics", timeout=30.0)
    if response.status_code != 200:
        raise RuntimeError(f"GET /metrics answered {response.status_code}: {response.text[:500]}")
    names = {f"{metric}_bucket": key for key, metric in SERVER_HISTOGRAMS.items()}
    buckets: dict[str, dict[float, float]] = {key: {} for key in SERVER_HISTOGRAMS}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            key = names.get(sample.name)
            if key is not None and sample.labels.get("endpoint") == endpoint:
                bound = float(sample.labels["le"])
                buckets[key][bound] = buckets[key].get(bound, 0.0) + sample.value
    return buckets


def settled_histograms(base_url: str, endpoint: str) -> dict[str, dict[float, float]]:
    """:func:`read_histograms` once two reads :data:`METRICS_SETTLE_S` apart agree.

    Raises:
        RuntimeError: They still moved after :data:`METRICS_SETTLE_READS` reads.
    """
    previous = read_histograms(base_url, endpoint)
    for _ in range(METRICS_SETTLE_READS):
        time.sleep(METRICS_SETTLE_S)
        current = read_histograms(base_url, endpoint)
        if current == previous:
            return current
        previous = current
    raise RuntimeError(
        f"The {endpoint} endpoint's histograms still moved after {METRICS_SETTLE_READS} reads "
        f"{METRICS_SETTLE_S} s apart: the server is still answering earlier requests."
    )


def histogram_quantile(
    before: dict[float, float], after: dict[float, float], fraction: float
) -> dict[str, float | None]:
    """A quantile of the observations a cumulative histogram gained between two reads.

    As Prometheus's ``histogram_quantile``: linear interpolation inside the bucket that
    holds the quantile, and the highest finite bound when that bucket is ``+Inf``.

    Returns:
        ``count`` (observations gained), ``value_s`` (the interpolated quantile) and
        ``bucket_le_s`` (the upper bound of its bucket: the quantile is at most that);
        both ``None`` when nothing was observed.
    """
    bounds = sorted(after)
    gained = [after[bound] - before.get(bound, 0.0) for bound in bounds]
    count = gained[-1] if gained else 0.0
    if count <= 0:
        return {"count": 0.0, "value_s": None, "bucket_le_s": None}
    rank = fraction * count
    # The last (+Inf) bucket holds every observation, so some bucket reaches the rank.
    index = next(i for i, cumulative in enumerate(gained) if cumulative >= rank)
    lower, below = (bounds[index - 1], gained[index - 1]) if index else (0.0, 0.0)
    if math.isinf(bounds[index]):
        return {"count": count, "value_s": lower, "bucket_le_s": None}
    value = lower + (bounds[index] - lower) * (rank - below) / (gained[index] - below)
    return {"count": count, "value_s": value, "bucket_le_s": bounds[index]}


def measure_open_loop(
    targets: Mapping[str, Target],
    rows: pd.DataFrame,
    capacities: Mapping[str, float],
    *,
    base_url: str,
    echo_url: str,
    seconds: float,
    workdir: Path,
    cpu: int | None,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Load the micro-batching endpoints open-loop below capacity, and read the batcher.

    Runs ``unbatched`` and ``batched`` at :data:`OPEN_LOOP_LOAD` of the unbatched
    closed-loop capacity, then ``batched`` at that share of its own, each for ``seconds``,
    reading the endpoint's queue and compute histograms from ``/metrics`` around each.
    After each run the generator runs again at the same rate against ``echo_url`` (the
    echo app, which answers at once): the latency the generator and the machine add.

    Args:
        targets: The ``batched`` and ``unbatched`` contenders; ``rows``: what each carries.
        capacities: Each contender's closed-loop requests per second, from this run.
        base_url: The Ferryman server, for ``/metrics``.
        echo_url: The echo app's URL (see ``echo_app.py``), for the generator's floor.
        seconds: Length of each run; ``workdir``: where the request bodies are written.
        cpu: The core to pin the generator to (wrk's), or ``None``.
        progress: Called with a line of text after each run.

    Returns:
        The settings and one entry per run: contender, endpoint, load, rate, the
        generator's result, the server's 99th percentiles of queue and compute time, and
        the generator's result against the echo app (``generator_floor``).
    """
    runs: list[dict[str, Any]] = []
    for contender, basis in (("unbatched",) * 2, ("batched", "unbatched"), ("batched",) * 2):
        body_file = workdir / f"open-loop-{contender}.json"
        body_file.write_bytes(targets[contender].body(rows))
        rate = OPEN_LOOP_LOAD * capacities[basis]
        endpoint = BATCH_ENDPOINTS[contender]
        before = settled_histograms(base_url, endpoint)

        def generate(url: str, rate: float = rate, body_file: Path = body_file) -> OpenLoopResult:
            return _open_loop.run(
                url,
                body_file,
                rate_per_s=rate,
                seconds=seconds,
                connections=BATCH_CONNECTIONS,
                arrivals="poisson",
                seed=OPEN_LOOP_SEED,
                cpu=cpu,
            )

        result = generate(targets[contender].url)
        after = settled_histograms(base_url, endpoint)
        server = {
            key: histogram_quantile(before[key], after[key], 0.99) for key in SERVER_HISTOGRAMS
        }
        floor = generate(echo_url)
        runs.append(
            {
                "contender": contender,
                "endpoint": endpoint,
                "load": f"{OPEN_LOOP_LOAD:.0%} of {basis} capacity",
                "rate_per_s": rate,
                "result": result.to_dict(),
                "server_p99": server,
                "generator_floor": floor.to_dict(),
            }
        )
        p99 = "-" if result.p99_s is None else format_seconds(result.p99_s)
        floor_p99 = "-" if floor.p99_s is None else format_seconds(floor.p99_s)
        progress(
            f"  open loop {contender:<9} at {rate:7.0f} req/s: {result.achieved_per_s:7.0f} "
            f"req/s  p99 {p99}  send lag p99 {format_seconds(result.send_lag_p99_s)}  "
            f"(generator floor p99 {floor_p99})"
        )
    limit = _open_loop.MAX_SEND_LAG_S
    return {"seed": OPEN_LOOP_SEED, "seconds": seconds, "max_send_lag_s": limit, "runs": runs}


# -- setting up the servers -------------------------------------------------------------------


def prepare_ferryman(
    home: Path,
    X: pd.DataFrame,
    y: np.ndarray,
    models: Mapping[str, Any],
    sweep: tuple[pd.DataFrame, np.ndarray, Mapping[str, Any]] | None = None,
) -> None:
    """Register the models in a fresh Ferryman home and create the endpoints.

    Endpoints: ``cancer`` (the logistic regression), ``hgb`` (the gradient boosting,
    unbatched) and ``hgb-batched`` (the same version, micro-batched); with ``sweep``
    (its data and models, see :func:`fit_sweep_models`), ``NAME`` and ``NAME-batched``
    for each of its models, registered as model ``NAME``.
    """
    from ferryman.config import Settings
    from ferryman.registry import Registry
    from ferryman.serving import EndpointService

    settings = Settings(
        home=home, database_url=None, artifact_uri=None, user="bench", migrate_on_start=True
    )
    with Registry.from_settings(settings) as registry:
        registry.register(models["cancer"], name="cancer", X=X, y=y)
        registry.register(models["hgb"], name="cancer-hgb", X=X, y=y)
        endpoints = EndpointService(database=registry.database, user="bench")
        endpoints.create("cancer", model="cancer/1")

        def batched_and_unbatched(endpoint: str, model: str) -> None:
            names = batch_endpoints(endpoint)
            endpoints.create(names["unbatched"], model=model)
            endpoints.create(
                names["batched"],
                model=model,
                max_batch_size=MAX_BATCH_SIZE,
                max_latency_ms=MAX_LATENCY_MS,
            )

        batched_and_unbatched("hgb", "cancer-hgb/1")
        if sweep is not None:
            sweep_X, sweep_y, sweep_models = sweep
            for name, model in sweep_models.items():
                registry.register(
                    model, name=name, X=sweep_X, y=sweep_y, flavor_options=SWEEP_OPTIONS.get(name)
                )
                batched_and_unbatched(name, f"{name}/1")


def fit_models(X: pd.DataFrame, y: np.ndarray) -> dict[str, Any]:
    """Fit the two models on the array, so that no server's model checks column names."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    array = X.to_numpy()
    return {
        "cancer": make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(array, y),
        "hgb": HistGradientBoostingClassifier(random_state=0).fit(array, y),
    }


def sweep_data() -> tuple[pd.DataFrame, np.ndarray]:
    """Generated classification data: 30 float columns, ``f0`` and ``f1`` category codes 0-9.

    The codes are deciles of two informative columns, kept as floats so that every
    request takes the same all-float route as the breast-cancer rows.
    """
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=SWEEP_ROWS, n_features=30, n_informative=15, random_state=0
    )
    for column in (0, 1):
        edges = np.quantile(X[:, column], np.linspace(0.1, 0.9, 9))
        X[:, column] = np.digitize(X[:, column], edges).astype(np.float64)
    return pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])]), y


def fit_sweep_models(X: pd.DataFrame, y: np.ndarray) -> dict[str, Any]:
    """The models of :data:`SWEEP`, fitted on the array (no column names to check)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    array = X.to_numpy()
    return {
        "hgb-300": HistGradientBoostingClassifier(
            max_iter=300, early_stopping=False, random_state=0
        ).fit(array, y),
        "hgb-categorical": HistGradientBoostingClassifier(
            categorical_features=[0, 1], random_state=0
        ).fit(array, y),
    }


def tree_nodes(model: Any) -> int:
    """Nodes in all of a fitted histogram gradient boosting model's trees."""
    return sum(len(tree.nodes) for iteration in model._predictors for tree in iteration)


def compiled(model: Any) -> bool:
    """Whether Ferryman serves ``model`` through its compiled NumPy path."""
    from ferryman.flavors._trees import compile_proba

    return compile_proba(model) is not None


def server_versions(mlserver: str | None) -> dict[str, str | None]:
    """Versions of the HTTP stack of the servers, and of wrk."""
    versions: dict[str, str | None] = {}
    for name in ("uvicorn", "starlette", "uvloop", "httptools", "orjson"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    versions["mlserver"] = mlserver
    completed = subprocess.run(
        [wrk_path(), "--version"], capture_output=True, text=True, check=False
    )
    first = (completed.stdout or completed.stderr).strip().splitlines()
    versions["wrk"] = first[0].split()[1] if first and len(first[0].split()) > 1 else None
    return versions


# -- entry point ------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the report and write the JSON; return the exit status."""
    args = _parser().parse_args(argv)
    run = Run(args, FULL, SMOKE)
    problem = run.missing_tool()
    if problem is None and _open_loop.c_compiler() is None:
        problem = "no C compiler (cc or gcc) to build the open-loop generator: apt-get install gcc"
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    skipped: list[str] = []
    if args.smoke and not _mlserver.venv_exists():
        skipped.append(f"mlserver ({_mlserver.VENV} is missing; a full run creates it)")
        mlserver_version = None
    else:
        _mlserver.ensure_venv()
        mlserver_version = _mlserver.version()
    X, y = breast_cancer()
    models = fit_models(X, y)
    sweep_X, sweep_y = sweep_data()
    sweep = (sweep_X, sweep_y, fit_sweep_models(sweep_X, sweep_y))
    with run.servers("ferryman-bench-serving-") as (workdir, servers):
        results = _run(
            run.config,
            X,
            y,
            models,
            sweep,
            workdir=workdir,
            servers=servers,
            with_mlserver=mlserver_version is not None,
            wrk_cpu=run.wrk_cpu,
            progress=run.progress,
        )
    document = run.document(
        "serving", results, servers=server_versions(mlserver_version), skipped=skipped
    )
    document["targets"] = evaluate_targets(document)
    run.write(RESULT_FILE, document, report_lines(document))
    failed = [
        f"{workload} {name}"
        for workload, results in _all_results(document)
        for name, result in results.items()
        if result["non_2xx"]
    ]
    if failed:
        print(f"error: error responses from {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _run(
    config: Config,
    X: pd.DataFrame,
    y: np.ndarray,
    models: Mapping[str, Any],
    sweep: tuple[pd.DataFrame, np.ndarray, Mapping[str, Any]],
    *,
    workdir: Path,
    servers: Servers,
    with_mlserver: bool,
    wrk_cpu: int | None,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    model_file = workdir / "cancer.joblib"
    joblib.dump(models["cancer"], model_file)
    hgb_file = workdir / "hgb.joblib"
    joblib.dump(models["hgb"], hgb_file)
    home = workdir / "ferryman-home"
    progress("registering the models in a fresh Ferryman home")
    prepare_ferryman(home, X, y, models, sweep)
    # Everything so far lives as long as the run; keep it out of the collector's way.
    gc.collect()
    gc.freeze()

    progress("starting the servers")
    port = free_port()
    ferryman = servers.start(
        "ferryman",
        [sys.executable, "-m", "ferryman.cli.serve", "--host", "127.0.0.1", "--port", str(port)],
        port=port,
        ready_path="/readyz",
        env=clean_environment(FERRYMAN_HOME=str(home), FERRYMAN_USER="bench"),
        cwd=workdir,
    )
    port = free_port()
    floor = servers.start(
        "floor",
        [sys.executable, str(FLOOR_APP), "--model", str(model_file), "--port", str(port)],
        port=port,
        ready_path="/ready",
        env=clean_environment(),
        cwd=workdir,
    )
    targets = {
        "ferryman-native": Target(
            f"{ferryman.url}/v1/endpoints/cancer/predict", native_body, probabilities_field
        ),
        "ferryman-v2": Target(
            f"{ferryman.url}/v2/models/cancer/infer", ferryman_v2_body, v2_probabilities
        ),
    }
    if with_mlserver:
        ports = (free_port(), free_port(), free_port())
        folder = _mlserver.write_model_folder(
            workdir / "mlserver", model_file=model_file, ports=ports
        )
        mlserver = servers.start(
            "mlserver",
            [str(_mlserver.ensure_venv()), "start", str(folder)],
            port=ports[0],
            ready_path=f"/v2/models/{_mlserver.MODEL_NAME}/ready",
            env=clean_environment(),
            cwd=folder,
        )
        targets["mlserver"] = Target(
            f"{mlserver.url}/v2/models/{_mlserver.MODEL_NAME}/infer",
            tensor_v2_body,
            v2_probabilities,
        )
    targets["floor"] = Target(f"{floor.url}/predict", floor_body, probabilities_field)
    port = free_port()
    echo = servers.start(
        "echo",
        [sys.executable, str(ECHO_APP), "--port", str(port)],
        port=port,
        ready_path="/",
        env=clean_environment(),
        cwd=workdir,
    )
    targets = {name: targets[name] for name in CONTENDERS if name in targets}

    workloads: dict[str, Any] = {}
    for workload in WORKLOADS:
        rows = X.iloc[: workload.rows]
        check_answers(targets, rows, models["cancer"].predict_proba(rows.to_numpy()))
        progress(f"{workload.name}: {', '.join(targets)}")
        runs = measure(
            targets,
            rows,
            workload.connections,
            config,
            workdir=workdir,
            cpu=wrk_cpu,
            progress=progress,
        )
        workloads[workload.name] = {
            "name": workload.name,
            "rows": workload.rows,
            "connections": workload.connections,
            "results": {name: summarize_runs(runs[name]) for name in runs},
            "ratios": {
                f"{a}/{b}": throughput_ratio(runs, a, b)
                for a, b in RATIOS
                if a in runs and b in runs
            },
        }

    progress("micro-batching: timing the model on its own")
    timings = batch_time(hgb_file, X.iloc[:MAX_BATCH_SIZE].to_numpy(), servers.cpu)
    batch_targets = batching_targets(ferryman.url, "hgb")
    rows = X.iloc[:1]
    runs, cpu = measure_batching(
        batch_targets,
        rows,
        models["hgb"],
        config,
        pid=ferryman.process.pid,
        workdir=workdir,
        cpu=wrk_cpu,
        progress=progress,
        label="micro-batching",
    )
    results = {name: summarize_runs(runs[name]) for name in runs}
    progress(f"micro-batching: open loop, 1 row x {BATCH_CONNECTIONS} conn")
    open_loop = measure_open_loop(
        batch_targets,
        rows,
        {name: result["requests_per_s"]["median"] for name, result in results.items()},
        base_url=ferryman.url,
        echo_url=f"{echo.url}/",
        seconds=2 * config.seconds,
        workdir=workdir,
        cpu=wrk_cpu,
        progress=progress,
    )
    batching = {
        "model": "HistGradientBoostingClassifier(random_state=0)",
        "connections": BATCH_CONNECTIONS,
        "max_batch_size": MAX_BATCH_SIZE,
        "max_latency_ms": MAX_LATENCY_MS,
        "batch_s": timings["batch_s"],
        "one_row_s": timings["one_row_s"],
        "results": results,
        "ratio": throughput_ratio(runs, "batched", "unbatched"),
        **cpu_figures(cpu),
        "open_loop": open_loop,
        "nodes": tree_nodes(models["hgb"]),
        "compiled": compiled(models["hgb"]),
        "call_s": call_time(home, "cancer-hgb/1", X.iloc[:MAX_BATCH_SIZE].to_numpy(), servers.cpu),
        "sweep": measure_sweep(
            ferryman.url,
            home,
            sweep,
            config,
            pid=ferryman.process.pid,
            workdir=workdir,
            server_cpu=servers.cpu,
            wrk_cpu=wrk_cpu,
            progress=progress,
        ),
    }
    return {"workloads": workloads, "batching": batching}


def batching_targets(base_url: str, endpoint: str) -> dict[str, Target]:
    """The contenders of :func:`batch_endpoints`, posting in the native protocol."""
    return {
        contender: Target(
            f"{base_url}/v1/endpoints/{name}/predict", native_body, probabilities_field
        )
        for contender, name in batch_endpoints(endpoint).items()
    }


def measure_batching(
    targets: Mapping[str, Target],
    rows: pd.DataFrame,
    model: Any,
    config: Config,
    *,
    pid: int,
    workdir: Path,
    cpu: int | None,
    progress: Callable[[str], None],
    label: str,
) -> tuple[dict[str, list[WrkResult]], dict[str, list[float]]]:
    """Check both endpoints' answers against ``model``, then run wrk at 64 connections.

    Returns:
        Each contender's wrk runs, and the server's CPU seconds per request answered in
        each run (all its threads, the pause after the run included; see
        :class:`~_servers.ServerCPU`): a figure that, unlike req/s, does not depend on
        how much of its core the server got from the machine.
    """
    check_answers(targets, rows, model.predict_proba(rows.to_numpy()))
    progress(f"{label}: 1 row x {BATCH_CONNECTIONS} conn")
    meter = ServerCPU(pid)
    runs = measure(
        targets,
        rows,
        BATCH_CONNECTIONS,
        config,
        workdir=workdir,
        cpu=cpu,
        progress=progress,
        on_run=meter,
    )
    return runs, {name: meter.per_request(name, runs[name]) for name in runs}


def cpu_figures(cpu: Mapping[str, Sequence[float]]) -> dict[str, Any]:
    """Median CPU seconds per request of each contender, and unbatched over batched.

    The ratio is the median of per-round ratios, as for req/s.
    """
    per_round = [
        unbatched / batched
        for unbatched, batched in zip(cpu["unbatched"], cpu["batched"], strict=True)
        if batched > 0
    ]
    return {
        "cpu_per_request_s": {name: float(np.median(values)) for name, values in cpu.items()},
        "cpu_ratio": float(np.median(per_round)) if per_round else math.nan,
    }


def measure_sweep(
    base_url: str,
    home: Path,
    sweep: tuple[pd.DataFrame, np.ndarray, Mapping[str, Any]],
    config: Config,
    *,
    pid: int,
    workdir: Path,
    server_cpu: int | None,
    wrk_cpu: int | None,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Batched against unbatched req/s for each model of :data:`SWEEP`, 1 row x 64 conn.

    Returns:
        By model: what it is, its tree nodes, Ferryman's own call time on 1 and 32 rows
        (:func:`call_time`), both endpoints' results, the median per-round ratio and the
        server's CPU per request (:func:`cpu_figures`).
    """
    X, _, models = sweep
    rows = X.iloc[:1]
    found: dict[str, Any] = {}
    for name, model in models.items():
        runs, cpu = measure_batching(
            batching_targets(base_url, name),
            rows,
            model,
            config,
            pid=pid,
            workdir=workdir,
            cpu=wrk_cpu,
            progress=progress,
            label=f"where batching pays: {name}",
        )
        found[name] = {
            "model": SWEEP[name],
            "compiled": compiled(model),
            "nodes": tree_nodes(model),
            "call_s": call_time(home, f"{name}/1", X.iloc[:MAX_BATCH_SIZE].to_numpy(), server_cpu),
            "results": {contender: summarize_runs(runs[contender]) for contender in runs},
            "ratio": throughput_ratio(runs, "batched", "unbatched"),
            **cpu_figures(cpu),
        }
    return found


def _all_results(document: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    pairs = [(name, workload["results"]) for name, workload in document["workloads"].items()]
    runs = document["batching"]["open_loop"]["runs"]
    open_loop = {f"{run['contender']}, {run['load']}": run["result"] for run in runs}
    sweep = [
        (f"micro-batching, {name}", found["results"])
        for name, found in document["batching"]["sweep"].items()
    ]
    return [
        *pairs,
        ("micro-batching", document["batching"]["results"]),
        ("micro-batching, open loop", open_loop),
        *sweep,
    ]


def _parser() -> argparse.ArgumentParser:
    return parser(
        "Measure Ferryman's server against MLServer and a bare floor with wrk.",
        RESULT_FILE,
        FULL,
        SMOKE,
        "1 round of 1 s per workload, skipping MLServer if its environment is missing; "
        "results go to a temporary directory unless --output-dir is given",
    )


if __name__ == "__main__":
    sys.exit(main())
