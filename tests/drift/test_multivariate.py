"""Domain classifier: joint changes invisible per feature, permutation threshold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ferryman.drift import DataDrift, DomainClassifierDrift
from ferryman.errors import InvalidInputError, NotFittedError
from tests.drift.conftest import profile


def _correlated(rng: np.random.Generator, rows: int, sign: float) -> pd.DataFrame:
    x = rng.normal(size=rows)
    return pd.DataFrame(
        {
            "a": x,
            "b": sign * x + rng.normal(0, 0.4, rows),
            "c": rng.choice(["u", "v", "w"], rows),
        }
    )


def test_a_flipped_correlation_is_multivariate_drift_but_not_per_feature_drift() -> None:
    rng = np.random.default_rng(0)
    reference, current = _correlated(rng, 3000, 1.0), _correlated(rng, 3000, -1.0)
    assert DataDrift().fit(reference).compare(current).n_drifted == 0
    result = DomainClassifierDrift().fit(reference).compare(current)
    assert result.drifted and result.statistic > 0.9


def test_samples_from_the_same_distribution_show_no_multivariate_drift() -> None:
    rng = np.random.default_rng(1)
    result = (
        DomainClassifierDrift()
        .fit(_correlated(rng, 3000, 1.0))
        .compare(_correlated(rng, 3000, 1.0))
    )
    assert not result.drifted
    assert result.p_value is not None and result.p_value > 0.05


def test_the_threshold_is_the_permutation_quantile_or_the_minimum_auc() -> None:
    rng = np.random.default_rng(2)
    result = (
        DomainClassifierDrift(max_rows=200)
        .fit(_correlated(rng, 200, 1.0))
        .compare(_correlated(rng, 200, 1.0))
    )
    assert result.threshold == max(result.min_effect, result.null_band)
    assert 0.5 < result.null_band < 0.7


def test_the_domain_classifier_is_reproducible() -> None:
    rng = np.random.default_rng(3)
    reference, current = _correlated(rng, 400, 1.0), _correlated(rng, 400, 0.5)
    first = DomainClassifierDrift().fit(reference).compare(current)
    assert DomainClassifierDrift().fit(reference).compare(current) == first


def test_a_stored_profile_cannot_be_a_multivariate_reference() -> None:
    with pytest.raises(InvalidInputError, match="a stored profile has none"):
        DomainClassifierDrift().fit(profile(10_000))


def test_compare_before_fit_says_to_call_fit() -> None:
    with pytest.raises(NotFittedError, match=r"call fit\(reference\) first"):
        DomainClassifierDrift().compare(pd.DataFrame({"a": [1.0]}))


def test_too_few_rows_are_refused_with_the_counts() -> None:
    frame = pd.DataFrame({"a": np.arange(10.0)})
    with pytest.raises(InvalidInputError, match="got 10 reference and 10 current rows"):
        DomainClassifierDrift().fit(frame).compare(frame)
