"""Time buckets: latency quantiles, prediction bins, PSI, merging and storage."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ferryman.errors import InvalidInputError
from ferryman.monitoring import METRIC_CATALOGUE, WindowAccumulator
from ferryman.monitoring._feature_bins import FeatureBinning, FeatureBins
from ferryman.monitoring.source import measure_window
from ferryman.monitoring.window import (
    ERROR_KINDS,
    FIXED_SCORE_CUTS,
    LATENCY_BOUNDS_MS,
    PSI_FLOOR,
    PredictionBins,
    bucket_start,
    latency_bucket_counts,
    latency_quantile,
    prediction_bins,
)
from ferryman.signature import OutputSpec, infer_signature
from tests.monitoring._stream import churn_model

BOUNDS = np.asarray(LATENCY_BOUNDS_MS)
QUANTILES = (0.5, 0.9, 0.95, 0.99)


def accumulate(latencies: list[float]) -> WindowAccumulator:
    accumulator = WindowAccumulator()
    accumulator.add_requests(np.asarray(latencies), np.zeros(len(ERROR_KINDS), dtype=np.int64))
    return accumulator


def edges(value: float) -> tuple[float, float]:
    """The bounds of the latency bucket holding ``value``."""
    index = int(np.searchsorted(BOUNDS, value, side="left"))
    lower = float(BOUNDS[index - 1]) if index > 0 else 0.0
    upper = float(BOUNDS[index]) if index < len(BOUNDS) else math.inf
    return lower, upper


def test_latency_bounds_span_fifty_microseconds_to_a_minute_log_spaced() -> None:
    ratios = BOUNDS[1:] / BOUNDS[:-1]

    assert BOUNDS[0] == 0.05
    assert BOUNDS[-1] >= 60_000
    assert np.allclose(ratios, 10**0.1)


def test_buckets_are_aligned_to_the_wall_clock() -> None:
    assert bucket_start(1_800_000_009.999, 10) == 1_800_000_000
    assert bucket_start(1_800_000_010.0, 10) == 1_800_000_010
    assert bucket_start(1_800_000_059.0, 60) == 1_800_000_000


def test_a_latency_on_a_bound_falls_in_the_bucket_it_closes() -> None:
    counts = latency_bucket_counts(np.asarray([0.05, 0.0501, 1e9]))

    assert counts[0] == 1
    assert counts[1] == 1
    assert counts[-1] == 1
    assert len(counts) == len(LATENCY_BOUNDS_MS) + 1


@settings(max_examples=200, deadline=None)
@given(
    latencies=st.lists(
        st.floats(min_value=0.01, max_value=200_000, allow_nan=False), min_size=1, max_size=300
    ),
    q=st.sampled_from(QUANTILES),
)
def test_quantiles_lie_within_the_buckets_of_the_order_statistics_numpy_interpolates(
    latencies: list[float], q: float
) -> None:
    ordered = np.sort(np.asarray(latencies))
    low = math.floor((len(ordered) - 1) * q)
    high = min(low + 1, len(ordered) - 1)
    accumulator = accumulate(latencies)

    estimate = measure_window(f"p{round(q * 100)}_latency_ms", {}, accumulator).value

    exact = float(np.percentile(ordered, q * 100))
    assert estimate is not None
    lower = max(edges(ordered[low])[0], ordered[0])
    upper = min(edges(ordered[high])[1], ordered[-1])
    assert lower <= exact <= upper
    assert lower <= estimate <= upper


@pytest.mark.parametrize("q", QUANTILES)
def test_quantiles_of_a_dense_sample_are_within_one_bucket_width_of_numpy(q: float) -> None:
    latencies = np.random.default_rng(7).lognormal(mean=1.5, sigma=1.0, size=20_000)

    estimate = measure_window(f"p{round(q * 100)}_latency_ms", {}, accumulate(list(latencies)))

    exact = float(np.percentile(latencies, q * 100))
    assert estimate.value is not None
    assert abs(math.log(estimate.value / exact)) < math.log(10**0.1)


def test_mean_latency_is_exact() -> None:
    assert measure_window("mean_latency_ms", {}, accumulate([1.0, 2.0, 6.0])).value == 3.0


def test_quantile_of_no_latency_is_none() -> None:
    empty = np.zeros(len(LATENCY_BOUNDS_MS) + 1, dtype=np.int64)

    assert latency_quantile(empty, 0.5, math.inf, -math.inf) is None


def test_untimed_requests_count_but_have_no_latency() -> None:
    accumulator = accumulate([float("nan"), 4.0])

    assert measure_window("request_count", {}, accumulator).value == 2
    assert measure_window("mean_latency_ms", {}, accumulator).samples == 1


# -- prediction bins ------------------------------------------------------------------


def test_binary_classifier_bins_are_the_profile_deciles_of_the_positive_score() -> None:
    model = churn_model()

    bins = prediction_bins(model.signature, model.profile)

    assert bins is not None
    assert bins.source == "probability[1]"
    assert bins.reference == (10,) * 10
    assert bins.cut_points == pytest.approx([0.005 + 0.99 * k / 10 for k in range(1, 10)])


def test_without_a_profile_binary_scores_get_fixed_cells_and_no_psi() -> None:
    bins = prediction_bins(churn_model().signature, None)

    assert bins == PredictionBins(kind="numeric", source="fixed", cut_points=FIXED_SCORE_CUTS)
    assert bins.psi(np.ones(10, dtype=np.int64)) is None


def test_label_classifiers_bin_by_class_with_training_frequencies() -> None:
    import pandas as pd

    from ferryman.flavors.base import Prediction
    from ferryman.signature import build_profile

    X = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]})
    prediction = Prediction(np.array(["a", "b", "b", "c"], dtype=object), None, ["a", "b", "c"])
    signature = infer_signature(X, predictions=prediction)

    bins = prediction_bins(signature, build_profile(X, predictions=prediction))

    assert bins is not None
    assert (bins.kind, bins.source) == ("categorical", "prediction")
    assert dict(zip(bins.categories, bins.reference or (), strict=False)) == {
        "b": 2,
        "a": 1,
        "c": 1,
    }
    assert bins.count_labels({"b": 3, "z": 1}).tolist() == [3, 0, 0, 1]


def test_regressors_without_a_profile_have_no_bins() -> None:
    signature = infer_signature(np.ones((3, 2)), y=np.array([0.5, 1.5, 2.5]))

    assert signature.output == OutputSpec(kind="value", dtype="float64")
    assert prediction_bins(signature, None) is None


def test_psi_floors_empty_cells() -> None:
    bins = PredictionBins(kind="numeric", source="t", cut_points=(0.5,), reference=(50, 50))

    value = bins.psi(np.array([100, 0]))

    expected = (1 - 0.5) * math.log(1 / 0.5) + (PSI_FLOOR - 0.5) * math.log(PSI_FLOOR / 0.5)
    assert value == pytest.approx(expected)


def test_psi_matches_the_drift_packages_floor() -> None:
    from ferryman.drift.psi import PSI_FLOOR as DRIFT_FLOOR

    assert PSI_FLOOR == DRIFT_FLOOR


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"kind": "numeric", "cut_points": ()}, "at least one cut point"),
        ({"kind": "categorical", "categories": ()}, "at least one category"),
        ({"kind": "numeric", "cut_points": (2.0, 1.0)}, "must increase strictly"),
        ({"kind": "numeric", "cut_points": (1.0,), "reference": (1,)}, "2 cells but 1"),
    ],
    ids=["no-cuts", "no-categories", "unordered", "reference-length"],
)
def test_prediction_bins_reject_malformed_cells(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        PredictionBins(source="t", **arguments)  # type: ignore[arg-type]


# -- merging and storage --------------------------------------------------------------

BINS = PredictionBins(kind="numeric", source="t", cut_points=(0.5,), reference=(5, 5))
FEATURES = ("age", "plan")
BINNING = FeatureBinning(
    (
        FeatureBins(name="age", kind="numeric", reference=(4, 6), cut_points=(40.0,)),
        FeatureBins(name="plan", kind="categorical", reference=(5, 3, 2), categories=("a", "b")),
    )
)


@st.composite
def accumulators(draw: st.DrawFn) -> WindowAccumulator:
    """Accumulators of integer-valued observations, so float sums are exact."""
    accumulator = WindowAccumulator()
    latencies = draw(st.lists(st.integers(0, 100_000), max_size=20))
    # Each request succeeded (-1) or failed with one error kind.
    kinds = draw(st.lists(st.integers(-1, 3), min_size=len(latencies), max_size=len(latencies)))
    errors = np.bincount([k for k in kinds if k >= 0], minlength=4).astype(np.int64)
    accumulator.add_requests(np.asarray(latencies, dtype=np.float64), errors)
    rows = draw(st.integers(0, 50))
    nulls = draw(st.integers(0, rows))
    values = draw(st.lists(st.integers(-100, 100), max_size=rows))
    classes = draw(st.dictionaries(st.sampled_from(["0", "1", "2"]), st.integers(1, 9)))
    low = draw(st.integers(0, rows))
    accumulator.add_predictions(
        rows=rows,
        null_rows=nulls,
        values=np.asarray(values, dtype=np.float64),
        class_counts=classes,
        bin_counts=np.asarray([low, rows - low]),
        bins=BINS,
        known_classes=("0", "1"),
    )
    names = draw(st.sampled_from([FEATURES, FEATURES[::-1], ("age",)]))
    counts = np.asarray(
        [[draw(st.integers(0, rows)) for _ in names] for _ in range(3)], dtype=np.int64
    )
    accumulator.add_features(names, rows, counts)
    if draw(st.booleans()):
        cells = draw(st.lists(st.integers(0, 9), min_size=BINNING.cells, max_size=BINNING.cells))
        accumulator.add_feature_histogram(BINNING, np.asarray(cells, dtype=np.int64))
    compared = draw(st.integers(0, 10))
    diffs = draw(st.lists(st.integers(0, 9), max_size=compared))
    accumulator.add_comparisons(
        rows=compared,
        agreed=draw(st.integers(0, compared)),
        abs_diffs=np.asarray(diffs, dtype=np.float64),
    )
    return accumulator


def canonical(accumulator: WindowAccumulator) -> dict[str, object]:
    """The stored form with features keyed by name (their order is not meaningful)."""
    data = accumulator.to_dict()
    features = data.pop("features")
    data["features"] = {
        name: (features["missing"][i], features["out_of_range"][i], features["unseen_category"][i])
        for i, name in enumerate(features["names"])
    }
    return data


@settings(max_examples=100, deadline=None)
@given(a=accumulators(), b=accumulators(), c=accumulators())
def test_merging_is_associative(
    a: WindowAccumulator, b: WindowAccumulator, c: WindowAccumulator
) -> None:
    assert canonical(a.merge(b).merge(c)) == canonical(a.merge(b.merge(c)))


@settings(max_examples=100, deadline=None)
@given(a=accumulators(), b=accumulators())
def test_merging_is_commutative_and_leaves_its_inputs_unchanged(
    a: WindowAccumulator, b: WindowAccumulator
) -> None:
    before = canonical(a), canonical(b)

    merged = a.merge(b)

    assert canonical(merged) == canonical(b.merge(a))
    assert (canonical(a), canonical(b)) == before


@settings(max_examples=100, deadline=None)
@given(a=accumulators())
def test_storage_round_trips(a: WindowAccumulator) -> None:
    assert WindowAccumulator.from_dict(a.to_dict()).to_dict() == a.to_dict()


RATES = [
    (name, {label: "age" if label == "feature" else "1" for label in spec.labels})
    for name, spec in METRIC_CATALOGUE.items()
    if name.endswith(("_rate", "_share")) or name == "agreement"
]


@settings(max_examples=100, deadline=None)
@given(a=accumulators(), b=accumulators())
def test_rates_and_shares_lie_in_the_unit_interval(
    a: WindowAccumulator, b: WindowAccumulator
) -> None:
    merged = a.merge(b)

    for metric, labels in RATES:
        value = measure_window(metric, labels, merged).value
        assert value is None or 0.0 <= value <= 1.0, metric


def test_histograms_of_different_references_are_kept_apart_and_psi_is_the_largest() -> None:
    other = PredictionBins(kind="numeric", source="u", cut_points=(0.5,), reference=(9, 1))
    first, second = WindowAccumulator(), WindowAccumulator()
    first.add_predictions(
        rows=10, null_rows=0, values=None, class_counts={}, bin_counts=np.array([5, 5]), bins=BINS
    )
    second.add_predictions(
        rows=10, null_rows=0, values=None, class_counts={}, bin_counts=np.array([5, 5]), bins=other
    )

    merged = first.merge(second)

    psi = measure_window("prediction_psi", {}, merged)
    assert set(merged.prediction_histograms) == {BINS, other}
    assert psi.samples == 20
    assert psi.value == pytest.approx(other.psi(np.array([5, 5])))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"format": 2}, r"Unknown metric bucket format 2; expected 1"),
        ({"format": 1, "requests": 1}, r"Malformed metric bucket: KeyError\('errors'\)"),
    ],
    ids=["format", "missing-key"],
)
def test_malformed_stored_buckets_are_refused(data: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        WindowAccumulator.from_dict(data)
