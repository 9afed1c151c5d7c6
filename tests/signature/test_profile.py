"""build_profile and ReferenceProfile: compact, JSON-safe training statistics."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from ferryman.errors import InvalidInputError, NotFoundError, SignatureInferenceError
from ferryman.flavors.base import Prediction
from ferryman.signature import (
    MAX_PROFILE_CATEGORIES,
    CategoricalProfile,
    Histogram,
    NumericProfile,
    ReferenceProfile,
    build_profile,
)

SMALL = pd.DataFrame(
    {
        "x": [1.0, 2.0, 3.0, 4.0, np.nan, np.inf],
        "c": pd.Series(["a", "b", "a", None, "a", "b"], dtype="str"),
    }
)


def test_a_numeric_feature_profile_matches_hand_computed_statistics() -> None:
    profile = build_profile(SMALL, quantiles=5)

    assert profile.quantile_levels == (0.0, 0.25, 0.5, 0.75, 1.0)
    assert profile.get_feature("x") == NumericProfile(
        name="x",
        dtype="float64",
        count=6,
        missing=1,
        infinite=1,
        minimum=1.0,
        maximum=4.0,
        mean=2.5,
        std=math.sqrt(1.25),
        quantiles=(1.0, 1.75, 2.5, 3.25, 4.0),
        histogram=Histogram(cut_points=(1.75, 2.5, 3.25), counts=(1, 1, 1, 1)),
    )


def test_a_categorical_feature_profile_counts_each_value() -> None:
    profile = build_profile(SMALL, quantiles=5)

    assert profile.get_feature("c") == CategoricalProfile(
        name="c",
        dtype="string",
        count=6,
        missing=1,
        distinct=2,
        categories=("a", "b"),
        frequencies=(3, 2),
        other=0,
    )


def test_the_profile_records_the_row_count() -> None:
    assert build_profile(SMALL).row_count == 6


def test_quantiles_equal_numpys_linear_quantiles() -> None:
    values = np.random.default_rng(7).normal(size=997)
    profile = build_profile(pd.DataFrame({"v": values}))
    feature = profile.get_feature("v")
    assert isinstance(feature, NumericProfile)

    np.testing.assert_allclose(
        feature.quantiles, np.quantile(values, profile.quantile_levels), rtol=1e-15, atol=0
    )


def test_percentile_histograms_put_about_one_percent_of_rows_in_each_bin() -> None:
    values = np.random.default_rng(3).normal(size=10_000)
    feature = build_profile(pd.DataFrame({"v": values})).get_feature("v")
    assert isinstance(feature, NumericProfile)
    assert feature.histogram is not None

    assert len(feature.histogram.counts) == 100
    assert max(feature.histogram.counts) - min(feature.histogram.counts) <= 2


def test_histogram_bin_counts_reproduce_the_reference_counts() -> None:
    values = np.random.default_rng(5).integers(0, 7, size=500).astype(float)
    feature = build_profile(pd.DataFrame({"v": values})).get_feature("v")
    assert isinstance(feature, NumericProfile)
    assert feature.histogram is not None

    assert feature.histogram.bin_counts(values).tolist() == list(feature.histogram.counts)


def test_histogram_outer_bins_are_open_ended() -> None:
    histogram = Histogram(cut_points=(1.0, 2.0), counts=(1, 1, 1))

    assert histogram.bin_counts([-100.0, 1.0, 1.5, 2.0, 100.0, np.nan]).tolist() == [2, 2, 1]


def test_a_constant_feature_has_one_cut_point() -> None:
    feature = build_profile(pd.DataFrame({"v": [3.0] * 10})).get_feature("v")
    assert isinstance(feature, NumericProfile)

    assert feature.histogram == Histogram(cut_points=(3.0,), counts=(10, 0))
    assert feature.std == 0.0


def test_a_feature_without_finite_values_has_empty_statistics() -> None:
    feature = build_profile(pd.DataFrame({"v": [np.nan, np.inf]})).get_feature("v")

    assert feature == NumericProfile(
        name="v",
        dtype="float64",
        count=2,
        missing=1,
        infinite=1,
        minimum=None,
        maximum=None,
        mean=None,
        std=None,
        quantiles=(),
        histogram=None,
    )


@pytest.mark.parametrize(
    ("values", "dtype", "categories", "frequencies"),
    [
        (pd.Series([True, False, True]), "bool", (True, False), (2, 1)),
        (
            pd.Series(pd.Categorical(["y", "x", "y"], categories=["x", "y", "z"])),
            "category",
            ("y", "x"),
            (2, 1),
        ),
        (pd.Series([1, None, 1], dtype="boolean"), "bool", (True,), (2,)),
    ],
    ids=["bool", "category-drops-unused", "nullable-bool"],
)
def test_bool_and_category_features_are_profiled_as_frequencies(
    values: pd.Series, dtype: str, categories: tuple[object, ...], frequencies: tuple[int, ...]
) -> None:
    feature = build_profile(pd.DataFrame({"v": values})).get_feature("v")

    assert isinstance(feature, CategoricalProfile)
    assert (feature.dtype, feature.categories, feature.frequencies) == (
        dtype,
        categories,
        frequencies,
    )


def test_datetime_features_are_profiled_in_seconds_since_the_epoch() -> None:
    values = pd.Series(["1970-01-01T00:00:10", "1970-01-01T00:00:20", None], dtype="datetime64[us]")
    feature = build_profile(pd.DataFrame({"v": values})).get_feature("v")

    assert isinstance(feature, NumericProfile)
    assert (feature.dtype, feature.minimum, feature.maximum, feature.missing) == (
        "datetime",
        10.0,
        20.0,
        1,
    )


def test_categorical_profiles_keep_the_most_frequent_values_and_count_the_rest() -> None:
    values = [f"v{i}" for i in range(MAX_PROFILE_CATEGORIES + 500)] + ["v1499"] * 3
    feature = build_profile(pd.DataFrame({"v": values})).get_feature("v")

    assert isinstance(feature, CategoricalProfile)
    assert len(feature.categories) == MAX_PROFILE_CATEGORIES
    assert (feature.categories[0], feature.frequencies[0]) == ("v1499", 4)
    assert (feature.distinct, feature.other) == (MAX_PROFILE_CATEGORIES + 500, 500)


def count_leaves(value: object) -> int:
    if isinstance(value, dict):
        return sum(count_leaves(item) for item in value.values())
    if isinstance(value, list):
        return sum(count_leaves(item) for item in value)
    return 1


def sample(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    return pd.DataFrame(
        {
            "x": rng.normal(size=rows),
            "n": rng.integers(0, 1_000_000, size=rows),
            "c": rng.choice(["a", "b", "c"], size=rows),
        }
    )


def test_profile_size_does_not_grow_with_the_number_of_rows() -> None:
    small = build_profile(sample(2_000)).to_dict()
    large = build_profile(sample(200_000)).to_dict()

    assert count_leaves(small) == count_leaves(large)
    assert len(json.dumps(large)) < 1.1 * len(json.dumps(small))


def test_numpy_and_arrow_training_data_are_profiled_like_dataframes() -> None:
    frame = pd.DataFrame({"0": [1.0, 2.0, 3.0], "1": [4.0, 5.0, 6.0]})

    from_numpy = build_profile(frame.to_numpy())
    from_arrow = build_profile(pa.Table.from_pandas(frame, preserve_index=False))

    assert from_numpy == from_arrow == build_profile(frame)


def test_classifier_predictions_are_profiled_as_labels_and_class_probabilities() -> None:
    prediction = Prediction(
        predictions=np.array([1, 0, 1, 1]),
        probabilities=np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]]),
        classes=[0, 1],
    )

    profile = build_profile(pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]}), predictions=prediction)

    labels, first, second = profile.predictions
    assert isinstance(labels, CategoricalProfile)
    assert (labels.name, labels.categories, labels.frequencies) == ("prediction", (1, 0), (3, 1))
    assert isinstance(first, NumericProfile)
    assert isinstance(second, NumericProfile)
    assert first.name == "probability[0]"
    assert first.mean == pytest.approx(0.4)
    assert (second.name, second.maximum) == ("probability[1]", 0.9)


def test_regression_predictions_and_targets_are_profiled_as_values() -> None:
    X = pd.DataFrame({"x": [1.0, 2.0, 3.0]})

    profile = build_profile(
        X, predictions=Prediction(predictions=np.array([0.5, 1.5, 2.5])), y=[1.0, 2.0, 3.0]
    )

    assert [(p.name, p.kind) for p in profile.predictions] == [("prediction", "numeric")]
    assert [(p.name, p.kind) for p in profile.target] == [("target", "numeric")]


def test_multi_output_targets_get_one_profile_per_output() -> None:
    profile = build_profile(pd.DataFrame({"x": [1.0, 2.0]}), y=np.array([[0, 1], [1, 1]]))

    assert [(p.name, p.kind) for p in profile.target] == [
        ("target[0]", "categorical"),
        ("target[1]", "categorical"),
    ]


def test_a_profile_without_predictions_or_targets_has_none() -> None:
    profile = build_profile(SMALL)

    assert (profile.predictions, profile.target) == ((), ())


def test_to_dict_is_json_safe_and_from_dict_restores_the_profile() -> None:
    prediction = Prediction(predictions=np.array([0.5, 1.5, 2.5, 3.5, 4.5, 5.5]))
    profile = build_profile(SMALL, predictions=prediction, y=np.arange(6))

    text = json.dumps(profile.to_dict(), allow_nan=False)

    assert ReferenceProfile.from_dict(json.loads(text)) == profile


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d.update(quantile_levels=[0.0, 0.5]),
            r"quantile_levels must run from 0\.0 to 1\.0",
        ),
        (lambda d: d["features"][0].update(kind="ordinal"), r"features\.0: Input tag 'ordinal'"),
        (lambda d: d["features"][0]["histogram"].update(counts=[1]), r"needs 4 counts, got 1"),
        (lambda d: d["features"][1].update(frequencies=[1]), r"same length"),
        (lambda d: d["features"][0].update(quantiles=[1.0]), r"has 1 quantiles for 5 levels"),
    ],
    ids=["levels", "kind", "histogram", "frequencies", "quantiles"],
)
def test_from_dict_names_the_field_of_a_malformed_profile(change: object, message: str) -> None:
    data = build_profile(SMALL, quantiles=5).to_dict()
    change(data)  # type: ignore[operator]

    with pytest.raises(InvalidInputError, match=rf"^Invalid reference profile: .*{message}"):
        ReferenceProfile.from_dict(data)


def test_get_feature_lists_the_features_when_the_name_is_unknown() -> None:
    with pytest.raises(
        NotFoundError, match=r"No feature 'z' in the reference profile\. Features: x, c\."
    ):
        build_profile(SMALL).get_feature("z")


@pytest.mark.parametrize("quantiles", [1, 0, True, 2.5], ids=["one", "zero", "bool", "float"])
def test_build_profile_refuses_fewer_than_two_quantile_levels(quantiles: object) -> None:
    with pytest.raises(InvalidInputError, match=r"quantiles must be an integer >= 2"):
        build_profile(SMALL, quantiles=quantiles)  # type: ignore[arg-type]


def test_build_profile_refuses_targets_of_another_length() -> None:
    with pytest.raises(InvalidInputError, match=r"^X has 6 rows but y has 2;"):
        build_profile(SMALL, y=[1, 2])


def test_build_profile_refuses_unsupported_columns() -> None:
    with pytest.raises(SignatureInferenceError, match=r"^Column 'v' .*unsupported type dict"):
        build_profile(pd.DataFrame({"v": [{"a": 1}]}))
