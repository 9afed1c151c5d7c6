"""Per-feature drift as windowed metrics: ``feature_psi{feature=...}`` and ``max_feature_psi``.

The recorder bins each request's rows against the version's reference profile when it
drains; the window's PSI must equal the offline :class:`ferryman.drift.PSITest` on the
same rows (categories: with ``min_expected=0`` and at most one new category, the one
documented difference), survive storage and merging, and work in gates and alert rules.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ferryman.drift import PSITest
from ferryman.errors import InvalidInputError, UnknownMetricError
from ferryman.flavors.base import Prediction
from ferryman.monitoring import MetricFlusher, MonitoringRecorder, StoreMetricSource
from ferryman.monitoring._expressions import parse_condition
from ferryman.monitoring._feature_bins import (
    FeatureBinning,
    FeatureBins,
    feature_binner,
)
from ferryman.monitoring.base import WindowSelector
from ferryman.monitoring.source import measure_window
from ferryman.monitoring.window import PSI_FLOOR, WindowAccumulator, merge_all
from ferryman.rollout.gates import GateSet
from ferryman.signature import ReferenceProfile, Signature, build_profile, infer_signature
from ferryman.store import Database

T0 = 1_800_000_000
ENDPOINT, VERSION = "loans", "loans/1"


def trained(train: pd.DataFrame) -> tuple[Signature, ReferenceProfile]:
    return infer_signature(train), build_profile(train)


def record(
    signature: Signature,
    profile: ReferenceProfile | None,
    batches: list[pd.DataFrame],
    *,
    version: str = VERSION,
    recorder: MonitoringRecorder | None = None,
) -> WindowAccumulator:
    """Play validated batches (one request each) into a recorder; return the merged buckets."""
    recorder = recorder or MonitoringRecorder(clock=lambda: T0 + 1.0)
    recorder.bind_version(ENDPOINT, version, signature=signature, profile=profile)
    for batch in batches:
        frame = signature.validate(batch)
        prediction = Prediction(np.zeros(len(batch)))
        recorder.observe_prediction(ENDPOINT, version, "primary", 200, 1.0, frame, prediction)
    recorder.drain()
    return merge_all(list(recorder.buckets().values()))


def offline_psi(profile: ReferenceProfile, feature: str, values: pd.Series) -> float:
    test = PSITest(min_expected=0)
    return test.compare(profile.get_feature(feature), values.reset_index(drop=True)).effect_size


def psi_of(feature: str, window: WindowAccumulator) -> float:
    value = measure_window("feature_psi", {"feature": feature}, window).value
    assert value is not None
    return value


@pytest.fixture(scope="module")
def loans() -> tuple[Signature, ReferenceProfile, pd.DataFrame]:
    rng = np.random.default_rng(7)
    n = 2_000
    train = pd.DataFrame(
        {
            "income": rng.lognormal(10, 0.5, n),
            "age": rng.integers(18, 80, n),
            "plan": rng.choice(["basic", "pro", "team"], n, p=[0.6, 0.3, 0.1]),
            "owner": rng.random(n) < 0.3,
        }
    )
    # A few missing training values make the signature's columns nullable.
    train.loc[::400, "income"] = np.nan
    train["age"] = train["age"].astype("Int64")
    train.loc[1::400, "age"] = pd.NA
    train.loc[2::400, "plan"] = None
    signature, profile = trained(train)
    return signature, profile, train


# -- agreement with the offline PSI ---------------------------------------------------


@pytest.mark.parametrize("columns", [["income", "age", "owner"], None], ids=["numbers", "mixed"])
def test_feature_psi_equals_the_offline_psi_on_the_same_rows(
    loans: tuple[Signature, ReferenceProfile, pd.DataFrame], columns: list[str] | None
) -> None:
    _, _, train = loans
    # "numbers": only int, float and bool columns (rows read as one float matrix);
    # "mixed": with a string column (rows read as objects).
    signature, profile = trained(train[columns] if columns else train)
    rng = np.random.default_rng(1)
    current = pd.DataFrame(
        {
            "income": rng.lognormal(10.3, 0.6, 900),
            "age": rng.integers(25, 90, 900),
            "plan": rng.choice(["basic", "pro", "team", "enterprise"], 900),
            "owner": rng.random(900) < 0.5,
        }
    )
    current.loc[::50, "income"] = np.nan  # missing: left out on both sides
    current.loc[1::97, "income"] = np.inf  # infinite: left out on both sides
    current.loc[2::89, "income"] = -np.inf
    current = current[columns] if columns else current
    batches = [current.iloc[i : i + 32] for i in range(0, len(current), 32)]

    window = record(signature, profile, batches)

    for feature in current.columns:
        expected = offline_psi(profile, feature, current[feature])
        assert psi_of(feature, window) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    finite = int(np.isfinite(current["income"]).sum())
    assert measure_window("feature_psi", {"feature": "income"}, window).samples == finite


def test_missing_categories_are_left_out_like_offline(
    loans: tuple[Signature, ReferenceProfile, pd.DataFrame],
) -> None:
    signature, profile, _ = loans
    current = pd.DataFrame(
        {
            "income": [20_000.0, 30_000.0, None, 25_000.0],
            "age": pd.array([30, None, 50, 60], dtype="Int64"),
            "plan": ["pro", None, "pro", "basic"],
            "owner": [True, False, True, True],
        }
    )

    window = record(signature, profile, [current])

    for feature, rows in (("income", 3), ("age", 3), ("plan", 3), ("owner", 4)):
        measured = measure_window("feature_psi", {"feature": feature}, window)
        expected = offline_psi(profile, feature, current[feature].dropna())
        assert measured.samples == rows
        assert measured.value == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_a_constant_reference_gets_cells_below_at_and_above_it() -> None:
    signature, profile = trained(pd.DataFrame({"rate": [2.5] * 200}))
    current = pd.Series([2.5] * 6 + [1.0, 9.0])

    window = record(signature, profile, [current.to_frame("rate")])

    assert psi_of("rate", window) == pytest.approx(offline_psi(profile, "rate", current), rel=1e-9)
    (binning,) = window.feature_histograms
    assert window.feature_histograms[binning].tolist() == [1, 6, 1]


# -- drift or no drift ----------------------------------------------------------------


def test_a_shifted_feature_has_a_large_psi_and_an_unchanged_one_a_small_psi(
    loans: tuple[Signature, ReferenceProfile, pd.DataFrame],
) -> None:
    signature, profile, _ = loans
    rng = np.random.default_rng(3)
    n = 2_000
    current = pd.DataFrame(
        {
            "income": rng.lognormal(10.8, 0.5, n),  # shifted: about twice the income
            "age": rng.integers(18, 80, n),  # as in training
            "plan": rng.choice(["basic", "pro", "team"], n, p=[0.6, 0.3, 0.1]),
            "owner": rng.random(n) < 0.3,
        }
    )

    window = record(signature, profile, [current])

    assert psi_of("income", window) > 1.0
    for feature in ("age", "plan", "owner"):
        assert psi_of(feature, window) < 0.05
    largest = measure_window("max_feature_psi", {}, window)
    assert largest.value == psi_of("income", window)
    assert largest.samples == n


def test_a_new_category_lands_in_the_other_cell_and_raises_the_psi(
    loans: tuple[Signature, ReferenceProfile, pd.DataFrame],
) -> None:
    signature, profile, train = loans
    current = pd.Series(["basic"] * 60 + ["pro"] * 30 + ["gold"] * 10)
    frame = train.iloc[:100].reset_index(drop=True).assign(plan=current)

    window = record(signature, profile, [frame])

    (binning,) = window.feature_histograms
    assert binning.find("plan") == FeatureBins(
        name="plan",
        kind="categorical",
        reference=(*profile.get_feature("plan").frequencies, 0),  # type: ignore[union-attr]
        categories=("basic", "pro", "team"),
    )
    assert binning.segment(window.feature_histograms[binning], "plan").tolist() == [60, 30, 0, 10]
    # One new category: the same cells as offline, so the same value.
    assert psi_of("plan", window) == pytest.approx(offline_psi(profile, "plan", current), rel=1e-9)
    assert psi_of("plan", window) > 0.5


def test_several_new_categories_share_the_other_cell(
    loans: tuple[Signature, ReferenceProfile, pd.DataFrame],
) -> None:
    """The documented difference: offline gives each new category a cell of its own."""
    signature, profile, train = loans
    current = pd.Series(["basic"] * 60 + ["gold"] * 20 + ["silver"] * 20)
    frame = train.iloc[:100].reset_index(drop=True).assign(plan=current)
    frequencies = np.asarray(profile.get_feature("plan").frequencies)  # type: ignore[union-attr]
    reference = frequencies / frequencies.sum()
    shares = np.maximum([0.6, 0.0, 0.0, 0.4], PSI_FLOOR)
    expected_shares = np.maximum([*reference, 0.0], PSI_FLOOR)
    pooled = float(np.sum((shares - expected_shares) * np.log(shares / expected_shares)))

    window = record(signature, profile, [frame])

    assert psi_of("plan", window) == pytest.approx(pooled, rel=1e-12)
    assert psi_of("plan", window) != pytest.approx(offline_psi(profile, "plan", current))


# -- which versions and features have histograms ---------------------------------------


def test_a_version_without_a_profile_has_no_feature_histograms(
    loans: tuple[Signature, ReferenceProfile, pd.DataFrame],
) -> None:
    signature, _, train = loans

    window = record(signature, None, [train.iloc[:10]])

    assert window.feature_histograms == {}
    assert feature_binner(signature, None) is None
    assert measure_window("feature_psi", {"feature": "income"}, window).value is None
    assert measure_window("max_feature_psi", {}, window) == measure_window(
        "max_feature_psi", {}, WindowAccumulator()
    )


def test_a_feature_without_a_usable_profile_entry_has_no_value() -> None:
    train = pd.DataFrame(
        {
            "x": np.arange(100.0),
            "empty": [np.nan] * 100,  # no finite training value: no cells
            "seen": pd.date_range("2026-01-01", periods=100, freq="h"),  # datetimes: none
        }
    )
    signature, profile = trained(train)

    window = record(signature, profile, [train.iloc[:20]])

    (binning,) = window.feature_histograms
    assert binning.names == ("x",)
    assert measure_window("feature_psi", {"feature": "empty"}, window).value is None
    assert measure_window("feature_psi", {"feature": "seen"}, window).samples == 0


def test_an_unknown_feature_names_the_features(
    loans: tuple[Signature, ReferenceProfile, pd.DataFrame],
) -> None:
    signature, profile, train = loans
    window = record(signature, profile, [train.iloc[:10]])

    with pytest.raises(
        UnknownMetricError,
        match=r"No feature 'incmoe' .* feature_psi\. Features: income, age, plan, owner\.",
    ):
        measure_window("feature_psi", {"feature": "incmoe"}, window)


def test_an_unknown_feature_in_an_empty_window_has_no_value() -> None:
    measured = measure_window("feature_psi", {"feature": "anything"}, WindowAccumulator())

    assert measured.value is None
    assert measured.samples == 0


def test_with_several_versions_the_largest_psi_is_taken(
    loans: tuple[Signature, ReferenceProfile, pd.DataFrame],
) -> None:
    signature, profile, train = loans
    other_signature, other_profile = trained(train.assign(income=train["income"] * 3))
    recorder = MonitoringRecorder(clock=lambda: T0 + 1.0)
    batch = train.iloc[:500]
    record(signature, profile, [batch], recorder=recorder)
    window = record(other_signature, other_profile, [batch], version="loans/2", recorder=recorder)
    alone = record(other_signature, other_profile, [batch], version="loans/2")

    assert len(window.feature_histograms) == 2
    measured = measure_window("feature_psi", {"feature": "income"}, window)
    assert measured.value == psi_of("income", alone)
    assert measured.value > psi_of("income", record(signature, profile, [batch]))
    assert measured.samples == 2 * int(batch["income"].notna().sum())


# -- storage and merging ----------------------------------------------------------------


def test_old_buckets_without_feature_histograms_still_load(
    loans: tuple[Signature, ReferenceProfile, pd.DataFrame],
) -> None:
    signature, profile, train = loans
    window = record(signature, profile, [train.iloc[:150]])
    old = window.to_dict()
    del old["feature_histograms"]

    loaded = WindowAccumulator.from_dict(old)

    assert loaded.feature_histograms == {}
    assert loaded.input_rows == 150
    assert measure_window("feature_psi", {"feature": "age"}, loaded).value is None
    merged = loaded.merge(window)
    assert merged.input_rows == 300
    assert psi_of("age", merged) == psi_of("age", window)  # the old bucket has no cells


def test_feature_histograms_round_trip_through_storage(
    loans: tuple[Signature, ReferenceProfile, pd.DataFrame],
) -> None:
    signature, profile, train = loans
    window = record(signature, profile, [train.iloc[:150]])

    loaded = WindowAccumulator.from_dict(window.to_dict())

    assert loaded.to_dict() == window.to_dict()
    assert psi_of("plan", loaded) == psi_of("plan", window)


@pytest.mark.parametrize(
    ("histogram", "message"),
    [
        ({"bins": {"features": []}, "counts": []}, "needs at least one feature"),
        ({"bins": {}, "counts": []}, r"Malformed feature binning: KeyError\('features'\)"),
        (
            {"bins": {"features": [{"name": "x", "kind": "ordinal"}]}, "counts": [1]},
            "kind must be 'numeric' or 'categorical'",
        ),
        (
            {
                "bins": {
                    "features": [
                        {
                            "name": "x",
                            "kind": "numeric",
                            "cut_points": [1.0],
                            "categories": [],
                            "reference": [3, 4],
                        }
                    ]
                },
                "counts": [1, 2, 3],
            },
            "expected 2 counts, got 3",
        ),
    ],
    ids=["no-features", "no-key", "kind", "count-length"],
)
def test_malformed_stored_feature_histograms_are_refused(
    histogram: dict[str, object], message: str
) -> None:
    data = WindowAccumulator().to_dict()
    data["feature_histograms"] = [histogram]

    with pytest.raises(InvalidInputError, match=message):
        WindowAccumulator.from_dict(data)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"kind": "numeric", "reference": (1,)}, "need at least one cut point"),
        ({"kind": "categorical", "reference": (1,)}, "need a category"),
        ({"kind": "numeric", "cut_points": (2.0, 1.0), "reference": (1, 1, 1)}, "strictly"),
        ({"kind": "numeric", "cut_points": (1.0,), "reference": (1,)}, "2 cells but 1"),
    ],
    ids=["no-cuts", "no-categories", "unordered", "reference-length"],
)
def test_feature_bins_reject_malformed_cells(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        FeatureBins(name="x", **arguments)  # type: ignore[arg-type]


def test_a_binning_refuses_repeated_names_and_counts_of_another_length() -> None:
    bins = FeatureBins(name="x", kind="numeric", reference=(1, 1), cut_points=(0.0,))
    with pytest.raises(InvalidInputError, match="must be unique"):
        FeatureBinning((bins, bins))
    with pytest.raises(InvalidInputError, match="Expected 2 feature histogram counts, got 3"):
        WindowAccumulator().add_feature_histogram(
            FeatureBinning((bins,)), np.zeros(3, dtype=np.int64)
        )


_MERGE_TRAIN = pd.DataFrame(
    {
        "x": [np.nan, *np.linspace(-3.0, 3.0, 299)],
        "n": np.arange(300) % 7,
        "c": [None, *np.asarray(["a", "b", "c"])[np.arange(299) % 3]],
    }
)
_MERGE_SIGNATURE, _MERGE_PROFILE = trained(_MERGE_TRAIN)
_numbers = st.one_of(
    st.floats(-5, 5, allow_nan=False),
    st.sampled_from([float("nan"), float("inf"), float("-inf"), 0.0, -3.0, 3.0]),
)
_rows = st.tuples(_numbers, st.integers(-2, 9), st.sampled_from(["a", "b", "c", "d", None]))


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(_rows, min_size=1, max_size=60),
    cuts=st.lists(st.integers(0, 60), max_size=4),
)
def test_merging_buckets_equals_binning_all_rows_at_once(
    rows: list[tuple[float, int, str | None]], cuts: list[int]
) -> None:
    frame = pd.DataFrame(rows, columns=["x", "n", "c"])
    bounds = sorted({0, len(frame), *(min(c, len(frame)) for c in cuts)})
    # Each slice is drained into its own 10 s bucket; merging them must give the
    # counts of one drain of every row.
    times = iter(range(len(bounds)))
    recorder = MonitoringRecorder(clock=lambda: T0 + 10.0 * next(times))
    recorder.bind_version(ENDPOINT, VERSION, signature=_MERGE_SIGNATURE, profile=_MERGE_PROFILE)
    for start, end in itertools.pairwise(bounds):
        part = _MERGE_SIGNATURE.validate(frame.iloc[start:end])
        recorder.observe_prediction(ENDPOINT, VERSION, "primary", 200, 1.0, part, None)
        recorder.drain()
    buckets = list(recorder.buckets().values())
    stored = [WindowAccumulator.from_dict(bucket.to_dict()) for bucket in buckets]

    merged = merge_all(stored)
    whole = record(_MERGE_SIGNATURE, _MERGE_PROFILE, [frame])

    assert len(buckets) == len(bounds) - 1
    assert merged.feature_histograms.keys() == whole.feature_histograms.keys()
    for binning, counts in whole.feature_histograms.items():
        assert merged.feature_histograms[binning].tolist() == counts.tolist()
    for feature in ("x", "n", "c"):
        assert measure_window("feature_psi", {"feature": feature}, merged) == measure_window(
            "feature_psi", {"feature": feature}, whole
        )


# -- in gates and alert rules -----------------------------------------------------------


def test_a_feature_psi_condition_parses_and_evaluates() -> None:
    condition = parse_condition('feature_psi{feature="x"}<0.2 for 5m')

    assert str(condition) == 'feature_psi{feature="x"} < 0.2 for 5m'
    assert (condition.metric, condition.label_map) == ("feature_psi", {"feature": "x"})
    assert condition.holds(0.05, condition.threshold())
    assert not condition.holds(0.3, condition.threshold())
    assert str(parse_condition("max_feature_psi >= 0.25")) == "max_feature_psi >= 0.25"
    with pytest.raises(UnknownMetricError, match=r"needs the label\(s\) feature"):
        parse_condition("feature_psi < 0.2")
    with pytest.raises(UnknownMetricError, match=r"does not take the label\(s\) feature"):
        parse_condition('max_feature_psi{feature="x"} < 0.2')


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    opened = Database(url=database_url).open()
    yield opened
    opened.close()


def test_gates_read_feature_psi_from_the_store(database: Database) -> None:
    rng = np.random.default_rng(11)
    signature, profile = trained(pd.DataFrame({"x": rng.normal(size=1_000)}))
    clock = [T0 + 1.0]
    recorder = MonitoringRecorder(clock=lambda: clock[0])
    same = pd.DataFrame({"x": rng.normal(size=400)})
    shifted = pd.DataFrame({"x": rng.normal(1.5, 1.0, size=400)})
    record(signature, profile, [same], version="m/1", recorder=recorder)
    record(signature, profile, [shifted], version="m/2", recorder=recorder)
    MetricFlusher(
        database=database, recorder=recorder, process="host:1:a", clock=lambda: clock[0]
    ).flush()
    source = StoreMetricSource(database)
    now = datetime.fromtimestamp(T0 + 10, UTC)
    gates = GateSet(['feature_psi{feature="x"} < 0.2', "max_feature_psi < 0.2"])

    passing = gates.evaluate(
        source, WindowSelector.last(ENDPOINT, timedelta(seconds=10), now=now, version="m/1")
    )
    failing = gates.evaluate(
        source, WindowSelector.last(ENDPOINT, timedelta(seconds=10), now=now, version="m/2")
    )

    assert passing.status == "pass"
    assert failing.status == "fail"
    result = failing.results[0]
    assert result.samples == 400
    assert result.observed is not None and result.observed > 0.2
    assert math.isclose(result.observed, offline_psi(profile, "x", shifted["x"]), rel_tol=1e-9)
