"""Dataset drift on synthetic data with known injected drifts, and every status."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ferryman.drift import DataDrift, Status
from ferryman.errors import DriftMethodNotFoundError, InvalidInputError, NotFittedError
from ferryman.signature import build_profile
from tests.drift.conftest import dataset, profile
from tests.drift.synthetic import INJECTED, STATIONARY

ROWS = [10_000, 100_000]


@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("source", ["profile", "data"])
def test_every_injected_column_drifts_and_no_stationary_one_does(rows: int, source: str) -> None:
    reference = profile(rows) if source == "profile" else dataset(rows).reference
    result = DataDrift().fit(reference).compare(dataset(rows).current)
    assert set(result.drifted_features) == set(INJECTED)
    assert not set(result.drifted_features) & set(STATIONARY)


def test_the_dataset_drifts_when_half_the_features_drift() -> None:
    data = dataset(10_000)
    assert not DataDrift().fit(data.reference).compare(data.current).dataset_drift  # 10 of 25
    assert DataDrift(drift_share=0.4).fit(data.reference).compare(data.current).dataset_drift


def test_a_profile_reference_is_used_as_stored_without_the_data() -> None:
    result = DataDrift().fit(profile(10_000)).compare(dataset(10_000).current)
    numeric = [f for f in result.features if f.kind == "numeric"]
    assert all(f.approximate for f in numeric if f.test in ("wasserstein", "ks"))


def test_the_automatic_rule_picks_a_test_per_column() -> None:
    result = DataDrift().fit(profile(10_000)).compare(dataset(10_000).current)
    tests = {f.name: f.test for f in result.features}
    assert (tests["n00"], tests["n06"], tests["c0"], tests["c2"]) == (
        "wasserstein",
        "jensen_shannon",
        "jensen_shannon",
        "z",
    )


def test_a_configured_test_replaces_the_automatic_one() -> None:
    data = dataset(10_000)
    result = DataDrift(methods={"n00": "ks"}).fit(data.reference).compare(data.current)
    assert result.get_feature("n00").test == "ks"


def test_an_unknown_configured_test_lists_the_valid_ones() -> None:
    with pytest.raises(DriftMethodNotFoundError, match="Unknown drift method 'kolmogorov'"):
        DataDrift(methods={"x": "kolmogorov"})


def test_q_values_are_benjamini_hochberg_adjusted_p_values() -> None:
    from scipy.stats import false_discovery_control

    data = dataset(10_000)
    result = DataDrift().fit(data.reference).compare(data.current)
    tested = [f for f in result.features if f.p_value is not None]
    expected = false_discovery_control([f.p_value for f in tested], method="bh")
    assert [f.q_value for f in tested] == pytest.approx(list(expected), abs=1e-12)


def test_compare_before_fit_says_to_call_fit() -> None:
    with pytest.raises(NotFittedError, match=r"call fit\(reference\) first"):
        DataDrift().compare(pd.DataFrame({"x": [1.0]}))


def test_a_profile_without_predictions_cannot_give_prediction_drift() -> None:
    with pytest.raises(InvalidInputError, match="The reference profile has no predictions"):
        DataDrift(section="predictions").fit(profile(10_000))


def _statuses(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, Status]:
    result = DataDrift(n_jobs=1).fit(reference).compare(current)
    return {f.name: f.status for f in result.features}


@pytest.fixture
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    n = 1000
    reference = pd.DataFrame(
        {
            "ok": rng.normal(size=n),
            "gone": rng.normal(size=n),
            "nulls": rng.normal(size=n),
            "flat": np.full(n, 3.0),
            "city": rng.choice(["Oslo", "Bergen", "Tromsø"], n),
            "few": np.where(np.arange(n) < 50, 1.0, np.nan),
            "typed": rng.normal(size=n),
        }
    )
    current = pd.DataFrame(
        {
            "ok": rng.normal(size=n),
            "nulls": np.full(n, np.nan),
            "flat": np.full(n, 3.0),
            "city": rng.choice(["Oslo", "Bergen", "Tromsø", "Bodø"], n),
            "few": rng.normal(size=n),
            "typed": ["n/a"] * n,
            "added": rng.normal(size=n),
        }
    )
    return reference, current


@pytest.mark.parametrize(
    ("column", "status"),
    [
        ("ok", Status.OK),
        ("gone", Status.MISSING_COLUMN),
        ("nulls", Status.ALL_MISSING),
        ("flat", Status.CONSTANT),
        ("city", Status.NEW_CATEGORIES),
        ("few", Status.INSUFFICIENT_DATA),
        ("typed", Status.TYPE_MISMATCH),
        ("added", Status.NEW_COLUMN),
    ],
)
def test_data_problems_are_reported_as_statuses_never_raised(
    frames: tuple[pd.DataFrame, pd.DataFrame], column: str, status: Status
) -> None:
    assert _statuses(*frames)[column] is status


def test_a_constant_column_that_moves_drifts() -> None:
    reference = pd.DataFrame({"x": np.full(500, 1.0)})
    current = pd.DataFrame({"x": np.full(500, 2.0)})
    feature = DataDrift().fit(reference).compare(current).features[0]
    assert (feature.status, feature.test, feature.drifted) == (
        Status.CONSTANT,
        "jensen_shannon",
        True,
    )


def test_a_new_category_is_named_and_its_share_reported() -> None:
    reference = pd.DataFrame({"c": ["a", "b"] * 500})
    current = pd.DataFrame({"c": ["a", "b"] * 400 + ["z"] * 200})
    feature = DataDrift().fit(reference).compare(current).features[0]
    assert feature.new_categories == ("z",)
    assert "20.0% of the current values" in feature.message
    assert feature.drifted


def test_missing_shares_are_reported_for_each_sample() -> None:
    reference = pd.DataFrame({"x": [1.0, np.nan, 2.0, np.inf] * 100})
    current = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0] * 100})
    feature = DataDrift().fit(reference).compare(current).features[0]
    assert (feature.reference_missing, feature.current_missing) == (0.5, 0.0)


def test_a_window_of_a_few_dozen_rows_is_insufficient_data() -> None:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"x": rng.normal(size=5000)})
    result = DataDrift().fit(reference).compare(pd.DataFrame({"x": rng.normal(3, 1, 40)}))
    assert result.features[0].status is Status.INSUFFICIENT_DATA
    assert not result.dataset_drift


def test_a_profile_and_its_data_reach_the_same_verdicts() -> None:
    data = dataset(10_000)
    from_profile = DataDrift().fit(build_profile(data.reference)).compare(data.current)
    from_data = DataDrift().fit(data.reference).compare(data.current)
    assert from_profile.drifted_features == from_data.drifted_features


def test_files_are_read_as_reference_and_current(tmp_path: object) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path))
    data = dataset(10_000)
    data.reference.to_parquet(folder / "reference.parquet")
    data.current.to_csv(folder / "current.csv", index=False)
    result = DataDrift().fit(folder / "reference.parquet").compare(folder / "current.csv")
    assert set(result.drifted_features) == set(INJECTED)


def test_an_unreadable_file_says_which_and_why(tmp_path: object) -> None:
    with pytest.raises(InvalidInputError, match=r"Data file '.*nowhere\.parquet' does not exist"):
        DataDrift().fit(f"{tmp_path}/nowhere.parquet")
