"""MonitoringRecorder: Prometheus input/output metrics for a known stream, caps, buckets."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from ferryman.errors import InvalidInputError
from ferryman.flavors.base import Prediction
from ferryman.monitoring import MonitoringRecorder, ServingMetrics
from ferryman.monitoring.metrics import SCORE_BUCKETS, BulkHistogram
from ferryman.monitoring.source import measure_window
from ferryman.signature import infer_signature
from tests.monitoring._stream import T0, Clock, bind, churn_model, classified, play

ROOT = Path(__file__).resolve().parents[2]
CHURN_1 = {"endpoint": "churn", "version": "churn/1", "role": "primary"}
CHURN_2 = {"endpoint": "churn", "version": "churn/2", "role": "shadow"}
PRICE = {"endpoint": "price", "version": "price/1", "role": "primary"}

# sample name, labels, value: the whole stream of tests/monitoring/_stream.py
EXPECTED: list[tuple[str, dict[str, str], float]] = [
    ("ferryman_input_rows_total", {"endpoint": "churn"}, 4),  # the shadow's copy not counted
    ("ferryman_feature_missing_total", {"endpoint": "churn", "feature": "age"}, 1),
    ("ferryman_feature_missing_total", {"endpoint": "churn", "feature": "income"}, 1),
    ("ferryman_feature_out_of_range_total", {"endpoint": "churn", "feature": "age"}, 1),
    ("ferryman_feature_out_of_range_total", {"endpoint": "churn", "feature": "income"}, 1),
    ("ferryman_feature_unseen_categories_total", {"endpoint": "churn", "feature": "plan"}, 1),
    ("ferryman_schema_violations_total", {"endpoint": "churn", "feature": "age"}, 1),
    ("ferryman_prediction_rows_total", CHURN_1, 4),
    ("ferryman_prediction_rows_total", CHURN_2, 2),
    ("ferryman_prediction_rows_total", PRICE, 3),
    ("ferryman_null_predictions_total", PRICE, 1),
    ("ferryman_predicted_classes_total", {**CHURN_1, "class": "0"}, 2),
    ("ferryman_predicted_classes_total", {**CHURN_1, "class": "1"}, 2),
    ("ferryman_predicted_classes_total", {**CHURN_2, "class": "0"}, 2),
    ("ferryman_prediction_score_bucket", {**CHURN_1, "le": "0.05"}, 1),
    ("ferryman_prediction_score_bucket", {**CHURN_1, "le": "0.2"}, 2),
    ("ferryman_prediction_score_bucket", {**CHURN_1, "le": "0.65"}, 2),
    ("ferryman_prediction_score_bucket", {**CHURN_1, "le": "0.7"}, 3),
    ("ferryman_prediction_score_bucket", {**CHURN_1, "le": "0.9"}, 4),
    ("ferryman_prediction_score_bucket", {**CHURN_1, "le": "+Inf"}, 4),
    ("ferryman_prediction_score_count", CHURN_1, 4),
    ("ferryman_prediction_score_sum", CHURN_1, 1.85),
    ("ferryman_prediction_values_total", CHURN_1, 4),
    ("ferryman_prediction_values_summed", CHURN_1, 1.85),
    ("ferryman_prediction_values_total", PRICE, 2),
    ("ferryman_prediction_values_summed", PRICE, 4.0),
]
ABSENT: list[tuple[str, dict[str, str]]] = [
    ("ferryman_null_predictions_total", CHURN_1),  # no null: no series
    ("ferryman_feature_missing_total", {"endpoint": "churn", "feature": "plan"}),
    ("ferryman_prediction_score_count", PRICE),  # a regressor has no score
]


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def ids(case: tuple[str, dict[str, str], float]) -> str:
    return "-".join([case[0].removeprefix("ferryman_"), *case[1].values()])


@pytest.fixture(scope="module")
def single_process_text() -> str:
    metrics = ServingMetrics.create(CollectorRegistry())
    clock = Clock()
    recorder = MonitoringRecorder(metrics=metrics.data, clock=clock)
    bind(recorder, churn_model())
    play(recorder, recorder, clock, churn_model())
    recorder.drain()
    return metrics.exposition().decode()


@pytest.mark.parametrize("case", EXPECTED, ids=[ids(case) for case in EXPECTED])
def test_a_known_stream_gives_exact_input_and_output_metrics(
    single_process_text: str, case: tuple[str, dict[str, str], float]
) -> None:
    name, labels, value = case

    found = samples(single_process_text).get((name, frozenset(labels.items())))

    assert found == pytest.approx(value)


@pytest.mark.parametrize("case", ABSENT, ids=[ids((*case, 0)) for case in ABSENT])
def test_series_without_observations_are_not_created(
    single_process_text: str, case: tuple[str, dict[str, str]]
) -> None:
    assert (case[0], frozenset(case[1].items())) not in samples(single_process_text)


def promtool_check(text: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not on PATH (Debian/Ubuntu: apt-get install -y prometheus)")
    return subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )


def test_promtool_accepts_the_single_process_exposition(single_process_text: str) -> None:
    result = promtool_check(single_process_text)

    assert result.returncode == 0, result.stdout + result.stderr


_WORKER = """
import sys
from pathlib import Path
from prometheus_client import CollectorRegistry
from ferryman.monitoring import MonitoringRecorder, ServingMetrics
from tests.monitoring._stream import Clock, bind, churn_model, play

metrics = ServingMetrics.create(CollectorRegistry(), multiprocess_dir=Path(sys.argv[2]))
clock = Clock()
model = churn_model()
mine = MonitoringRecorder(metrics=metrics.data, clock=clock)
other = MonitoringRecorder(clock=clock)  # the other worker's half of the stream
bind(mine, model)
bind(other, model)
play(*((mine, other) if sys.argv[1] == "a" else (other, mine)), clock, model)
mine.drain()
"""


@pytest.fixture(scope="module")
def multiprocess_text(tmp_path_factory: pytest.TempPathFactory) -> str:
    directory = tmp_path_factory.mktemp("prometheus")
    environment = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    for part in ("a", "b"):
        subprocess.run(
            [sys.executable, "-c", _WORKER, part, str(directory)],
            cwd=ROOT,
            env=environment,
            check=True,
            timeout=120,
        )
    reader = ServingMetrics.create(CollectorRegistry(), multiprocess_dir=directory)
    return reader.exposition().decode()


@pytest.mark.parametrize("case", EXPECTED, ids=[ids(case) for case in EXPECTED])
def test_two_worker_processes_add_up_in_multiprocess_mode(
    multiprocess_text: str, case: tuple[str, dict[str, str], float]
) -> None:
    name, labels, value = case

    found = samples(multiprocess_text).get((name, frozenset(labels.items())))

    assert found == pytest.approx(value)


def test_promtool_accepts_the_multiprocess_exposition(multiprocess_text: str) -> None:
    result = promtool_check(multiprocess_text)

    assert result.returncode == 0, result.stdout + result.stderr


def test_bulk_histogram_exposes_what_as_many_observations_would() -> None:
    values = [0.01, 0.05, 0.05, 0.33, 0.99, 1.0, 7.0]
    bulk_registry, loop_registry = CollectorRegistry(), CollectorRegistry()
    bulk = BulkHistogram("s", "d", ("l",), registry=bulk_registry, buckets=SCORE_BUCKETS)
    loop = BulkHistogram("s", "d", ("l",), registry=loop_registry, buckets=SCORE_BUCKETS)
    counts = np.bincount(
        np.searchsorted(np.asarray(SCORE_BUCKETS), values, side="left"),
        minlength=len(SCORE_BUCKETS) + 1,
    )

    bulk.labels("x").observe_counts(counts.tolist(), sum(values))
    for value in values:
        loop.labels("x").observe(value)

    def without_created(registry: CollectorRegistry) -> list[tuple[str, dict[str, str], float]]:
        return [
            (sample.name, sample.labels, sample.value)
            for family in registry.collect()
            for sample in family.samples
            if not sample.name.endswith("_created")
        ]

    assert without_created(bulk_registry) == without_created(loop_registry)


def test_bulk_histogram_rejects_counts_of_the_wrong_length() -> None:
    histogram = BulkHistogram("s", "d", registry=CollectorRegistry(), buckets=(1.0, 2.0))

    with pytest.raises(ValueError, match="Expected 3 bucket counts, got 2"):
        histogram.observe_counts([1, 1], 2.0)


# -- label caps -----------------------------------------------------------------------


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_classes_past_the_cap_are_pooled_as_other() -> None:
    serving = ServingMetrics.create(CollectorRegistry())
    recorder = MonitoringRecorder(metrics=serving.data, max_classes=2)
    labels = np.array(["a", "b", "c", "d", "a"], dtype=object)

    recorder.observe_prediction("e", "e/1", "primary", 200, 1.0, None, Prediction(labels, None, []))
    recorder.drain()

    found = {
        klass: sample(
            serving.registry,
            "ferryman_predicted_classes_total",
            endpoint="e",
            version="e/1",
            role="primary",
            **{"class": klass},
        )
        for klass in ("a", "b", "c", "d", "(other)")
    }
    assert found == {"a": 2, "b": 1, "c": None, "d": None, "(other)": 2}


def test_buckets_keep_the_signatures_classes_and_cap_the_others() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    trained = Prediction(np.array(["a", "b", "c"], dtype=object), None, ["a", "b", "c"])
    recorder = MonitoringRecorder(max_classes=1, clock=Clock())
    recorder.bind_version("e", "e/1", signature=infer_signature(frame, predictions=trained))
    labels = np.array(["c", "b", "a", "x", "y", "y"], dtype=object)

    recorder.observe_prediction("e", "e/1", "primary", 200, 1.0, None, Prediction(labels))
    (bucket,) = recorder.buckets().values()

    assert bucket.class_counts == {"a": 1, "b": 1, "c": 1, "x": 1, "(other)": 2}


def test_features_past_the_cap_are_pooled_as_other() -> None:
    serving = ServingMetrics.create(CollectorRegistry())
    frame = pd.DataFrame({"x": [1.0, None], "y": [1.0, None], "z": [1.0, None]})
    signature = infer_signature(frame)
    recorder = MonitoringRecorder(metrics=serving.data, max_features=1)
    recorder.bind_version("e", "e/1", signature=signature)
    batch = signature.validate([{"x": None, "y": None, "z": None}])

    recorder.observe_prediction("e", "e/1", "primary", 200, 1.0, batch, Prediction(np.ones(1)))
    recorder.drain()

    def missing(feature: str) -> float | None:
        return sample(
            serving.registry, "ferryman_feature_missing_total", endpoint="e", feature=feature
        )

    assert (missing("x"), missing("y"), missing("(other)")) == (1, None, 2)


def test_schema_violations_on_unknown_columns_get_an_empty_feature_label() -> None:
    serving = ServingMetrics.create(CollectorRegistry())
    recorder = MonitoringRecorder(metrics=serving.data)
    recorder.bind_version("churn", "churn/1", signature=churn_model().signature)

    recorder.observe_rejected("churn", "churn/1", "schema_violation", feature="attacker-chosen")
    recorder.observe_rejected("churn", None, "schema_violation")
    recorder.drain()

    assert (
        sample(serving.registry, "ferryman_schema_violations_total", endpoint="churn", feature="")
        == 2
    )


# -- inputs of each layout --------------------------------------------------------------


def test_tensor_inputs_are_checked_for_missing_and_out_of_range_values() -> None:
    training = np.array([[0.0, 10.0], [1.0, 20.0], [np.nan, 15.0]])
    signature = infer_signature(training)
    recorder = MonitoringRecorder(clock=Clock())
    recorder.bind_version("t", "t/1", signature=signature)
    batch = signature.validate(np.array([[np.nan, 30.0], [0.5, 5.0], [2.0, 12.0]]))

    recorder.observe_prediction("t", "t/1", "primary", 200, 1.0, batch, Prediction(np.zeros(3)))
    (bucket,) = recorder.buckets().values()

    assert measure_window("missing_rate", {"feature": "0"}, bucket).value == pytest.approx(1 / 3)
    assert measure_window("out_of_range_rate", {"feature": "0"}, bucket).value == pytest.approx(
        1 / 3
    )
    assert measure_window("out_of_range_rate", {"feature": "1"}, bucket).value == pytest.approx(
        2 / 3
    )


def test_numeric_tables_with_extra_columns_are_narrowed_to_the_signature() -> None:
    signature = infer_signature(pd.DataFrame({"a": [1.0, 2.0], "b": [3, 4]}))
    recorder = MonitoringRecorder(clock=Clock())
    recorder.bind_version("n", "n/1", signature=signature)
    batch = signature.validate([{"a": 9.0, "b": 3}])
    assert isinstance(batch, pd.DataFrame)
    wider = batch.assign(customer_id=["c-1"])

    recorder.observe_prediction("n", "n/1", "primary", 200, 1.0, wider, Prediction(np.zeros(1)))
    (bucket,) = recorder.buckets().values()

    assert measure_window("out_of_range_rate", {"feature": "a"}, bucket).value == 1.0
    assert measure_window("out_of_range_rate", {"feature": "b"}, bucket).value == 0.0


def test_an_unreadable_batch_is_logged_and_its_request_still_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = MonitoringRecorder(clock=Clock())
    recorder.bind_version("churn", "churn/1", signature=churn_model().signature)
    wrong_width = np.zeros((1, 5))

    with caplog.at_level(logging.ERROR, logger="ferryman.monitoring.recorder"):
        recorder.observe_prediction(
            "churn", "churn/1", "primary", 200, 1.0, wrong_width, classified([0], [0.1])
        )
        (bucket,) = recorder.buckets().values()

    assert "Monitoring could not read a batch of churn (churn/1, primary)" in caplog.text
    assert measure_window("request_count", {}, bucket).value == 1
    assert measure_window("null_rate", {}, bucket).samples == 1


# -- buckets in memory ----------------------------------------------------------------


def test_nothing_is_computed_before_a_drain_and_a_full_queue_drains_itself() -> None:
    recorder = MonitoringRecorder(max_pending=3, clock=Clock())

    for _ in range(2):
        recorder.observe_prediction("e", "e/1", "primary", 200, 1.0)
    waiting = recorder.pending
    recorder.observe_prediction("e", "e/1", "primary", 200, 1.0)

    assert waiting == 2
    assert recorder.pending == 0
    assert [bucket.requests for bucket in recorder.buckets().values()] == [3]


def test_confirmed_closed_buckets_are_forgotten_and_late_observations_move_forward() -> None:
    clock = Clock()
    recorder = MonitoringRecorder(clock=clock)
    recorder.observe_prediction("e", "e/1", "primary", 200, 1.0)
    snapshots = recorder.collect()

    clock.now = T0 + 25.0  # bucket T0 ended over a bucket ago
    recorder.confirm(snapshots)
    clock.now = T0 + 2.0  # an observation stamped inside the forgotten bucket
    recorder.observe_prediction("e", "e/1", "primary", 200, 1.0)

    assert [s.bucket_start.timestamp() for s in snapshots] == [T0]
    assert list(recorder.buckets()) == [("e", "e/1", "primary", T0 + 10)]
    assert recorder.collect()[0].data["requests"] == 1


def test_a_bucket_changed_after_its_snapshot_is_kept_until_flushed_again() -> None:
    clock = Clock()
    recorder = MonitoringRecorder(clock=clock)
    recorder.observe_prediction("e", "e/1", "primary", 200, 1.0)
    snapshots = recorder.collect()
    recorder.observe_prediction("e", "e/1", "primary", 200, 1.0)

    clock.now = T0 + 25.0
    recorder.confirm(snapshots)

    assert [s.data["requests"] for s in recorder.collect()] == [2]


def test_shadow_comparisons_of_regressors_measure_absolute_differences() -> None:
    recorder = MonitoringRecorder(clock=Clock())
    primary = Prediction(np.array([1.0, 2.0, 3.0]))
    shadow = Prediction(np.array([1.0, 2.5, 1.0]))

    recorder.observe_comparison("p", "p/2", primary, shadow)
    (bucket,) = recorder.buckets().values()

    assert measure_window("agreement", {}, bucket).value == pytest.approx(1 / 3)
    assert measure_window("mean_abs_diff", {}, bucket).value == pytest.approx(2.5 / 3)
    assert measure_window("max_abs_diff", {}, bucket).value == 2.0


# -- bad input ------------------------------------------------------------------------


def test_unknown_roles_are_refused_on_the_spot() -> None:
    with pytest.raises(InvalidInputError, match=r"Unknown role 'canary'\. Available: primary"):
        MonitoringRecorder().observe_prediction("e", "e/1", "canary", 200, 1.0)


def test_unknown_rejection_kinds_are_refused_on_the_spot() -> None:
    with pytest.raises(InvalidInputError, match=r"Unknown rejection kind 'oops'\. Available: "):
        MonitoringRecorder().observe_rejected("e", "e/1", "oops")


def test_comparisons_of_different_lengths_are_refused_on_the_spot() -> None:
    with pytest.raises(InvalidInputError, match=r"Cannot compare 2 primary rows with 1 shadow"):
        MonitoringRecorder().observe_comparison(
            "e", "e/2", classified([0, 1], [0.1, 0.9]), classified([0], [0.1])
        )


@pytest.mark.parametrize("name", ["bucket_seconds", "max_pending", "max_classes", "max_features"])
def test_recorder_settings_must_be_positive_integers(name: str) -> None:
    with pytest.raises(InvalidInputError, match=rf"{name} must be a positive integer, got 0"):
        MonitoringRecorder(**{name: 0})  # type: ignore[arg-type]
