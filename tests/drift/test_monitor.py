"""Drift over captured traffic: windows of the prediction log, reports, gauges, the monitor."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from ferryman.capture import CaptureWriter, EndpointCapture, LogStore, PrivacyPolicy
from ferryman.drift import DataDrift, Status
from ferryman.drift.endpoint import endpoint_report
from ferryman.drift.monitor import DriftMetrics, DriftMonitor, MonitorTarget
from ferryman.drift.traffic import TrafficWindow, read_window
from ferryman.errors import InvalidInputError
from tests.drift.traffic import (
    FEATURES,
    T0,
    Clock,
    capture,
    reference_profile,
    traffic,
)

ROOT = Path(__file__).resolve().parents[2]
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
LINUX = sys.platform == "linux"
NOW = T0 + dt.timedelta(minutes=5)


def configured(writer: CaptureWriter, policy: dict[str, str]) -> CaptureWriter:
    writer.configure("churn", EndpointCapture(privacy=PrivacyPolicy.from_mapping(policy)))
    return writer


def monitor_of(
    store: LogStore, metrics: DriftMetrics, targets: Sequence[MonitorTarget], **options: Any
) -> DriftMonitor:
    """A monitor of ``targets`` (a fixed list) with the given options."""
    return DriftMonitor(store=store, metrics=metrics, targets=lambda: targets, **options)


def churn() -> MonitorTarget:
    """Endpoint ``churn`` against the training profile."""
    return MonitorTarget("churn", reference_profile(), "churn/1 (stored reference profile)")


# -- reports over a window -----------------------------------------------------------------


def test_a_stationary_window_shows_no_drift(writer: CaptureWriter, store: LogStore) -> None:
    capture(writer, traffic(2000, seed=1))

    result = endpoint_report(store, "churn", reference=reference_profile(), now=NOW)

    assert result.report.data.drifted_features == ()
    assert not result.dataset_drift and not result.report.predictions.drifted
    assert (result.status, result.window.rows, result.window.versions) == ("ok", 2000, ("churn/1",))


def test_a_mean_shift_in_one_feature_drifts_that_feature_only(
    writer: CaptureWriter, store: LogStore
) -> None:
    capture(writer, traffic(2000, seed=1, age_shift=0.5))

    result = endpoint_report(store, "churn", reference=reference_profile(), now=NOW)

    assert result.report.data.drifted_features == ("age",)
    assert not result.report.predictions.drifted


def test_outputs_that_move_with_stationary_inputs_are_prediction_drift(
    writer: CaptureWriter, store: LogStore
) -> None:
    capture(writer, traffic(2000, seed=1, score_shift=1.0))

    result = endpoint_report(store, "churn", reference=reference_profile(), now=NOW)

    predictions = result.report.predictions
    assert predictions.status == "ok" and predictions.result is not None
    assert set(predictions.result.drifted_features) == {
        "prediction",
        "probability[0]",
        "probability[1]",
    }
    assert result.report.data.drifted_features == ()


@pytest.mark.parametrize(
    "classes", [("no", "yes"), (False, True)], ids=["text classes", "boolean classes"]
)
def test_probabilities_match_the_profiles_class_names(
    writer: CaptureWriter, store: LogStore, classes: tuple[object, object]
) -> None:
    capture(writer, traffic(2000, seed=1, classes=classes))

    result = endpoint_report(store, "churn", reference=reference_profile(classes), now=NOW)

    assert result.report.predictions.result is not None
    compared = [f.name for f in result.report.predictions.result.features]
    assert compared == [p.name for p in reference_profile(classes).predictions]
    assert {f.name for f in result.report.data.features} == set(FEATURES)


def test_an_empty_window_is_insufficient_data_not_an_error(store: LogStore) -> None:
    result = endpoint_report(store, "churn", reference=reference_profile(), now=NOW)

    statuses = {f.name: f.status for f in result.report.data.features}
    assert statuses == dict.fromkeys(FEATURES, Status.INSUFFICIENT_DATA)
    assert (result.status, result.report.data.n_tested, result.dataset_drift) == (
        "insufficient-data",
        0,
        False,
    )
    assert result.report.predictions.status == "insufficient-data"
    assert "no captured records" in result.report.data.features[0].message


def test_a_window_below_min_rows_is_insufficient_data(
    writer: CaptureWriter, store: LogStore
) -> None:
    capture(writer, traffic(50, seed=1, age_shift=2.0))

    result = endpoint_report(store, "churn", reference=reference_profile(), now=NOW)

    assert {f.status for f in result.report.data.features} == {Status.INSUFFICIENT_DATA}
    assert result.status == "insufficient-data" and not result.dataset_drift


@pytest.mark.parametrize(
    ("policy", "privacy", "protected", "message"),
    [
        ({"email": "hash"}, {"email": "hash"}, "hash", "Hashed by the endpoint's privacy policy"),
        ({"email": "hash"}, None, "hash (detected)", "keyed digests (64 hex characters)"),
        ({"email": "drop"}, {"email": "drop"}, "drop", "Dropped by the endpoint's privacy policy"),
        ({"email": "redact"}, {"email": "redact"}, "redact", "Redacted by the endpoint's"),
    ],
    ids=["hashed", "hashed, recognised without the policy", "dropped", "redacted"],
)
def test_privacy_protected_columns_are_reported_not_compared(
    writer: CaptureWriter,
    store: LogStore,
    policy: dict[str, str],
    privacy: dict[str, str] | None,
    protected: str,
    message: str,
) -> None:
    capture(configured(writer, policy), traffic(2000, seed=1))

    result = endpoint_report(
        store, "churn", reference=reference_profile(), now=NOW, privacy=privacy
    )

    email = result.report.data.get_feature("email")
    assert (email.status, email.test, email.drifted) == (Status.MISSING_COLUMN, None, False)
    assert message in email.message
    assert dict(result.protected) == {"email": protected}
    assert result.report.data.drifted_features == ()


def test_a_column_whose_reference_holds_digests_too_is_compared(
    writer: CaptureWriter, store: LogStore, tmp_path: Path
) -> None:
    capture(configured(writer, {"email": "hash"}), traffic(2000, seed=1))
    reference = tmp_path / "hashed.parquet"
    read_window(store, "churn", HOUR, now=NOW).frame.to_parquet(reference)

    result = endpoint_report(store, "churn", reference=reference, now=NOW)

    assert result.report.data.get_feature("email").status is Status.OK
    assert dict(result.protected) == {}


def test_a_count_window_reads_the_latest_records(
    writer: CaptureWriter, store: LogStore, clock: Clock
) -> None:
    capture(writer, traffic(1000, seed=1), prefix="old")
    clock.set(T0 + dt.timedelta(minutes=1))
    capture(writer, traffic(500, seed=2, age_shift=0.5), prefix="new")

    window = read_window(store, "churn", 500, now=NOW)

    assert (window.info.rows, window.info.matched, window.info.since) == (
        500,
        500,
        T0 + dt.timedelta(minutes=1),
    )
    assert window.frame["age"].mean() > 43


def test_only_primary_records_answered_with_200_are_read(
    writer: CaptureWriter, store: LogStore
) -> None:
    capture(writer, traffic(300, seed=1), prefix="primary")
    capture(writer, traffic(200, seed=2), prefix="shadow", role="shadow")
    capture(writer, traffic(100, seed=3), prefix="failed", status=500)

    assert read_window(store, "churn", HOUR, now=NOW).info.rows == 300


def test_a_version_filter_reads_only_that_versions_records(
    writer: CaptureWriter, store: LogStore
) -> None:
    capture(writer, traffic(300, seed=1), prefix="one", version="churn/1")
    capture(writer, traffic(200, seed=2), prefix="two", version="churn/2")

    window = read_window(store, "churn", TrafficWindow(span=HOUR, version="churn/2"), now=NOW)

    assert (window.info.rows, window.info.versions) == (200, ("churn/2",))


def test_a_window_over_max_rows_is_the_same_uniform_sample_every_time(
    writer: CaptureWriter, store: LogStore
) -> None:
    capture(writer, traffic(2000, seed=1))

    first = read_window(store, "churn", HOUR, now=NOW, max_rows=300)
    second = read_window(store, "churn", HOUR, now=NOW, max_rows=300)

    assert (first.info.rows, first.info.matched, first.info.sampled) == (300, 2000, True)
    assert first.frame.equals(second.frame)


def test_the_previous_day_can_be_the_reference(
    writer: CaptureWriter, store: LogStore, clock: Clock
) -> None:
    clock.set(T0 - DAY)
    capture(writer, traffic(2000, seed=1), prefix="yesterday")
    clock.set(T0)
    capture(writer, traffic(2000, seed=2, age_shift=0.5), prefix="today")

    result = endpoint_report(
        store,
        "churn",
        reference=TrafficWindow(span=DAY, offset=DAY),
        window=DAY,
        now=NOW,
    )

    assert result.report.data.drifted_features == ("age",)
    assert result.reference_window is not None and result.reference_window.rows == 2000
    assert result.report.predictions.status == "ok"


def test_a_data_file_can_be_the_reference(
    writer: CaptureWriter, store: LogStore, tmp_path: Path
) -> None:
    capture(writer, traffic(2000, seed=1, age_shift=0.5))
    training = traffic(3000, seed=0)
    file = tmp_path / "training.parquet"
    training.inputs.to_parquet(file)

    result = endpoint_report(store, "churn", reference=file, now=NOW)

    assert result.report.data.drifted_features == ("age",)
    assert result.report.reference == str(file)


def test_the_json_is_the_offline_reports_plus_the_window(
    writer: CaptureWriter, store: LogStore
) -> None:
    capture(writer, traffic(2000, seed=1))
    result = endpoint_report(store, "churn", reference=reference_profile(), now=NOW)

    document = json.loads(result.to_json())

    assert set(result.report.to_dict()) < set(document)
    assert document["window"]["rows"] == 2000 and document["endpoint"] == "churn"
    assert document["window"]["until"] == NOW.isoformat()


def test_the_html_report_names_the_window(writer: CaptureWriter, store: LogStore) -> None:
    capture(writer, traffic(300, seed=1))
    result = endpoint_report(store, "churn", reference=reference_profile(), now=NOW)

    page = result.to_html()

    assert page.startswith("<!DOCTYPE html>") and "300 captured records" in page


# -- windows -------------------------------------------------------------------------------


@given(st.integers(min_value=1, max_value=10**9))
def test_a_number_is_a_count_of_records(rows: int) -> None:
    assert TrafficWindow.parse(str(rows)) == TrafficWindow(rows=rows)


@given(st.integers(min_value=1, max_value=10**5), st.sampled_from(["s", "m", "h", "d"]))
def test_a_duration_is_a_span_of_time(amount: int, unit: str) -> None:
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86_400}[unit]
    assert TrafficWindow.parse(f"{amount}{unit}").span == dt.timedelta(seconds=amount * seconds)


BAD_WINDOWS = [
    ("neither", {}, "exactly one of span"),
    ("both", {"span": HOUR, "rows": 10}, "exactly one of span"),
    ("zero span", {"span": dt.timedelta(0)}, "span must be a positive timedelta"),
    ("zero rows", {"rows": 0}, "rows must be an integer >= 1"),
    ("negative offset", {"span": HOUR, "offset": -HOUR}, "offset must be a timedelta >= 0"),
]


@pytest.mark.parametrize(
    ("arguments", "message"), [c[1:] for c in BAD_WINDOWS], ids=[c[0] for c in BAD_WINDOWS]
)
def test_a_bad_window_is_refused(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        TrafficWindow(**arguments)  # type: ignore[arg-type]


def test_unreadable_window_text_names_both_forms() -> None:
    with pytest.raises(InvalidInputError, match=r"Invalid window 'soon'.*24h.*5000"):
        TrafficWindow.parse("soon")


def test_a_naive_now_is_refused(store: LogStore) -> None:
    with pytest.raises(InvalidInputError, match="now is a naive datetime"):
        read_window(store, "churn", HOUR, now=dt.datetime(2026, 3, 14, 15))


def test_a_bad_endpoint_name_is_refused(store: LogStore) -> None:
    with pytest.raises(InvalidInputError, match="Invalid endpoint name 'no such'"):
        read_window(store, "no such", HOUR, now=NOW)


# -- gauges and the monitor ----------------------------------------------------------------


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_evaluate_once_publishes_the_report_as_gauges(
    writer: CaptureWriter, store: LogStore, gauges: tuple[CollectorRegistry, DriftMetrics]
) -> None:
    registry, metrics = gauges
    capture(writer, traffic(2000, seed=1, age_shift=0.5))
    monitor = monitor_of(store, metrics, [churn()])

    run = monitor.evaluate_once(NOW)

    report = run.reports["churn"].report
    age = report.data.get_feature("age")
    assert age.test is not None
    labels = {"endpoint": "churn", "feature": "age", "test": age.test}
    assert value(registry, "ferryman_feature_drift", **labels) == age.effect_size
    assert value(registry, "ferryman_feature_drift_p_value", **labels) == age.p_value
    assert value(registry, "ferryman_feature_drifted", endpoint="churn", feature="age") == 1.0
    assert value(registry, "ferryman_feature_drifted", endpoint="churn", feature="plan") == 0.0
    assert value(registry, "ferryman_dataset_drift", endpoint="churn") == 0.0
    assert value(registry, "ferryman_drift_window_rows", endpoint="churn") == 2000.0
    stamp = value(registry, "ferryman_drift_last_run_timestamp_seconds", endpoint="churn")
    assert stamp == NOW.timestamp()


def test_prediction_drift_is_published_per_output(
    writer: CaptureWriter, store: LogStore, gauges: tuple[CollectorRegistry, DriftMetrics]
) -> None:
    registry, metrics = gauges
    capture(writer, traffic(2000, seed=1, score_shift=1.0))

    run = monitor_of(store, metrics, [churn()]).evaluate_once(NOW)

    outputs = run.reports["churn"].report.predictions.result
    assert outputs is not None
    for output in outputs.features:
        assert output.test is not None
        labels = {"endpoint": "churn", "output": output.name, "test": output.test}
        assert value(registry, "ferryman_prediction_drift", **labels) == output.effect_size


def test_series_the_latest_run_did_not_produce_become_nan(
    writer: CaptureWriter,
    store: LogStore,
    clock: Clock,
    gauges: tuple[CollectorRegistry, DriftMetrics],
) -> None:
    registry, metrics = gauges
    capture(writer, traffic(2000, seed=1, age_shift=0.5))
    monitor = monitor_of(store, metrics, [churn()])
    test = monitor.evaluate_once(NOW).reports["churn"].report.data.get_feature("age").test
    assert test is not None

    monitor.evaluate_once(NOW + 2 * HOUR)  # the window is empty now

    labels = {"endpoint": "churn", "feature": "age", "test": test}
    assert math.isnan(value(registry, "ferryman_feature_drift", **labels) or 0.0)
    assert value(registry, "ferryman_feature_drifted", endpoint="churn", feature="age") == 0.0
    assert value(registry, "ferryman_drift_window_rows", endpoint="churn") == 0.0


def test_an_endpoint_no_longer_watched_is_retired(
    writer: CaptureWriter, store: LogStore, gauges: tuple[CollectorRegistry, DriftMetrics]
) -> None:
    registry, metrics = gauges
    capture(writer, traffic(2000, seed=1))
    watched = [churn()]
    monitor = DriftMonitor(store=store, metrics=metrics, targets=lambda: watched)
    monitor.evaluate_once(NOW)

    watched.clear()
    monitor.evaluate_once(NOW)

    assert monitor.find_report("churn") is None
    assert math.isnan(value(registry, "ferryman_dataset_drift", endpoint="churn") or 0.0)


def test_one_failing_endpoint_does_not_stop_the_others(
    writer: CaptureWriter,
    store: LogStore,
    gauges: tuple[CollectorRegistry, DriftMetrics],
    tmp_path: Path,
) -> None:
    registry, metrics = gauges
    capture(writer, traffic(2000, seed=1))
    broken = MonitorTarget("fraud", tmp_path / "missing.parquet")
    monitor = monitor_of(store, metrics, [broken, churn()])

    run = monitor.evaluate_once(NOW)

    assert set(run.reports) == {"churn"}
    assert "does not exist" in run.failures["fraud"]
    assert value(registry, "ferryman_drift_failures_total", endpoint="fraud") == 1.0


def test_an_endpoint_without_a_reference_is_skipped_with_a_reason(
    store: LogStore, gauges: tuple[CollectorRegistry, DriftMetrics]
) -> None:
    run = monitor_of(store, gauges[1], [MonitorTarget("churn", None)]).evaluate_once(NOW)

    assert run.reports == {} and "no stored reference profile" in run.skipped["churn"]


def test_a_process_that_does_not_lead_evaluates_nothing(
    writer: CaptureWriter, store: LogStore, gauges: tuple[CollectorRegistry, DriftMetrics]
) -> None:
    registry, metrics = gauges
    capture(writer, traffic(2000, seed=1))
    monitor = monitor_of(store, metrics, [churn()], leader=lambda: False)

    run = monitor.evaluate_once(NOW)

    assert not run.led and run.reports == {}
    assert value(registry, "ferryman_dataset_drift", endpoint="churn") is None


def test_the_monitor_uses_its_data_configuration(
    writer: CaptureWriter, store: LogStore, gauges: tuple[CollectorRegistry, DriftMetrics]
) -> None:
    capture(writer, traffic(2000, seed=1))
    monitor = monitor_of(store, gauges[1], [churn()], data=DataDrift(min_rows=5000))

    result = monitor.evaluate_once(NOW).reports["churn"]

    assert result.status == "insufficient-data" and result.report.data.n_tested == 0


class SignallingClock(Clock):
    """A clock that says when the monitor's thread read it (a run started)."""

    def __init__(self) -> None:
        super().__init__(NOW)
        self.read = threading.Event()

    def __call__(self) -> float:
        self.read.set()
        return super().__call__()


def test_start_evaluates_on_a_thread_until_stopped(
    writer: CaptureWriter, store: LogStore, gauges: tuple[CollectorRegistry, DriftMetrics]
) -> None:
    registry, metrics = gauges
    capture(writer, traffic(2000, seed=1))
    clock = SignallingClock()
    monitor = monitor_of(store, metrics, [churn()], clock=clock, interval=3600.0)

    monitor.start()
    started = clock.read.wait(timeout=60)
    monitor.stop()

    assert started
    found = monitor.find_report("churn")
    assert found is not None and found.window.until == NOW
    assert value(registry, "ferryman_drift_last_run_timestamp_seconds", endpoint="churn") == (
        NOW.timestamp()
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"interval": 0}, "interval must be a positive number of seconds"),
        ({"max_rows": 0}, "max_rows must be an integer >= 1"),
        ({"window": "1h"}, "A window is a TrafficWindow, a timedelta or a number"),
    ],
    ids=["interval", "max_rows", "window"],
)
def test_the_monitor_refuses_bad_configuration(
    store: LogStore,
    gauges: tuple[CollectorRegistry, DriftMetrics],
    options: dict[str, Any],
    message: str,
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        monitor_of(store, gauges[1], [], **options)


# -- several server processes --------------------------------------------------------------

_WORKER = """
import sys
from prometheus_client import CollectorRegistry
from ferryman.drift.monitor import DriftMetrics

metrics = DriftMetrics.create(CollectorRegistry())
metrics.dataset_drift.labels("churn").set(float(sys.argv[1]))
metrics.feature_drifted.labels("churn", "age").set(float(sys.argv[1]))
"""


def test_the_latest_process_wins_in_multiprocess_mode(tmp_path: Path) -> None:
    directory = tmp_path / "prometheus"
    directory.mkdir()
    environment = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    for drifted in ("1", "0"):  # an earlier leader saw drift, the latest one does not
        subprocess.run(
            [sys.executable, "-c", _WORKER, drifted],
            cwd=ROOT,
            env=environment,
            check=True,
            timeout=120,
        )
    merged = CollectorRegistry()
    MultiProcessCollector(merged, path=str(directory))  # type: ignore[no-untyped-call]

    samples = [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(generate_latest(merged).decode())
        for sample in family.samples
        if sample.name == "ferryman_dataset_drift"
    ]

    assert samples == [({"endpoint": "churn"}, 0.0)]


def undated(document: Any) -> Any:
    """``document`` without its ``created_at`` stamps (a report is dated when computed)."""
    if isinstance(document, dict):
        return {k: undated(v) for k, v in document.items() if k != "created_at"}
    if isinstance(document, list):
        return [undated(v) for v in document]
    return document


def test_reports_computed_in_a_child_process_equal_those_of_the_thread(
    writer: CaptureWriter,
    store: LogStore,
    gauges: tuple[CollectorRegistry, DriftMetrics],
    tmp_path: Path,
) -> None:
    registry, metrics = gauges
    capture(writer, traffic(2000, seed=1, age_shift=0.5))
    targets = [churn(), MonitorTarget("fraud", tmp_path / "missing.parquet")]
    here = monitor_of(store, DriftMetrics.create(CollectorRegistry()), targets)
    child = monitor_of(store, metrics, targets, process=True)

    try:
        expected = here.evaluate_once(NOW)
        got = child.evaluate_once(NOW)
        again = child.evaluate_once(NOW)  # the same child, its store kept
    finally:
        child.stop()

    assert undated(got.reports["churn"].to_dict()) == undated(expected.reports["churn"].to_dict())
    assert undated(again.reports["churn"].to_dict()) == undated(got.reports["churn"].to_dict())
    assert got.failures == expected.failures and "does not exist" in got.failures["fraud"]
    assert value(registry, "ferryman_feature_drifted", endpoint="churn", feature="age") == 1.0
    assert child._pool is None  # stopped with the monitor


def test_the_child_process_runs_at_the_lowest_priority() -> None:
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from ferryman.drift.monitor import _child_setup

    with ProcessPoolExecutor(
        1, mp_context=get_context("spawn"), initializer=_child_setup, initargs=(os.getpid(),)
    ) as pool:
        niceness = pool.submit(os.nice, 0).result()
        policy = pool.submit(os.sched_getscheduler, 0).result() if LINUX else None
        # Threads started later, as DuckDB's and Arrow's are, inherit the policy.
        thread_policy = pool.submit(_policy_of_a_new_thread).result() if LINUX else None

    assert niceness == 19
    if LINUX:
        assert policy == os.SCHED_IDLE
        assert thread_policy == os.SCHED_IDLE


def _policy_of_a_new_thread() -> int:
    policies: list[int] = []
    thread = threading.Thread(target=lambda: policies.append(os.sched_getscheduler(0)))
    thread.start()
    thread.join()
    return policies[0]


CHILD_OF_A_KILLED_SERVER = """
import os, sys, time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from ferryman.drift.monitor import _child_setup

if __name__ == "__main__":
    pool = ProcessPoolExecutor(
        1, mp_context=get_context("spawn"), initializer=_child_setup, initargs=(os.getpid(),)
    )
    print(pool.submit(os.getpid).result(), flush=True)
    time.sleep(60)
"""


def test_the_child_process_exits_when_its_server_is_killed(tmp_path: Path) -> None:
    import signal
    import time

    script = tmp_path / "server.py"
    script.write_text(CHILD_OF_A_KILLED_SERVER, encoding="utf-8")
    with subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    ) as server:
        try:
            assert server.stdout is not None
            child = int(server.stdout.readline())
        finally:
            server.send_signal(signal.SIGKILL)
            server.wait(30)

    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline and Path(f"/proc/{child}").exists():
        time.sleep(0.1)
    alive = Path(f"/proc/{child}").exists()
    if alive:
        os.kill(child, signal.SIGKILL)
    assert not alive, "the drift child outlived its killed server"


def test_stop_kills_a_child_whose_report_outlasts_the_timeout(
    store: LogStore, gauges: tuple[CollectorRegistry, DriftMetrics]
) -> None:
    """A report starved on a busy core must not hold up the server's exit."""
    import contextlib
    import signal
    import time
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool
    from multiprocessing import get_context

    from ferryman.drift.monitor import _child_setup

    _, metrics = gauges
    monitor = monitor_of(store, metrics, [churn()], process=True)
    monitor._pool = ProcessPoolExecutor(
        1, mp_context=get_context("spawn"), initializer=_child_setup, initargs=(os.getpid(),)
    )
    child = monitor._pool.submit(os.getpid).result()
    outcome: list[BaseException] = []
    started = threading.Event()

    def run() -> None:  # a run whose report takes far longer than stop() waits
        with monitor._running:
            started.set()
            try:
                assert monitor._pool is not None
                monitor._pool.submit(time.sleep, 600).result()
            except BaseException as exc:
                outcome.append(exc)

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    try:
        started.wait(30)
        monitor.stop(timeout=0.2)
        runner.join(60)

        assert not runner.is_alive()
        assert len(outcome) == 1 and isinstance(outcome[0], BrokenProcessPool)
        with pytest.raises(ProcessLookupError):
            for _ in range(300):  # the killed child is reaped by the pool's manager thread
                os.kill(child, 0)
                time.sleep(0.1)
    finally:  # never leave a sleeping child behind, even when the test fails
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)


def test_a_run_whose_child_is_killed_by_stop_ends_without_a_failure(
    writer: CaptureWriter,
    store: LogStore,
    gauges: tuple[CollectorRegistry, DriftMetrics],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from concurrent.futures.process import BrokenProcessPool

    _, metrics = gauges
    capture(writer, traffic(200, seed=3))
    monitor = monitor_of(store, metrics, [churn(), churn()], process=True)
    calls: list[str] = []

    def killed(endpoint: str, arguments: dict[str, Any]) -> Any:
        calls.append(endpoint)
        monitor._stopping.set()  # as stop() does before killing the child
        raise BrokenProcessPool("killed")

    monkeypatch.setattr(monitor, "_report", killed)
    run = monitor.evaluate_once(NOW)

    assert calls == ["churn"]  # the second target is not tried
    assert run.failures == {} and run.reports == {}
