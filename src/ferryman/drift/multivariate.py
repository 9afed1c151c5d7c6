"""Multivariate drift: can a classifier tell reference rows from current rows?

A gradient-boosted classifier (scikit-learn's ``HistGradientBoostingClassifier``) is
trained to tell reference rows (label 0) from current rows (label 1), with
cross-fitting: every row is scored by a model that did not see it. Its ROC AUC is 0.5
when the two samples are alike, and rises towards 1 when they differ in any way the
model can see, joint changes included (a correlation that flips, a combination of
values that never occurred) that no per-feature test notices.

The threshold comes from a permutation test: the domain labels are shuffled
``permutations`` times against the out-of-fold scores, giving the AUC's distribution
when scores and labels are unrelated; drift is an AUC at or above both ``min_auc`` and
the null distribution's ``1 - alpha`` quantile, with a permutation p-value at most
``alpha``.

The method needs rows of both samples. A stored reference profile keeps per-column
summaries and no rows, so it cannot be used: sampling each column independently from
a profile would destroy exactly the joint structure this method looks at.
"""

from __future__ import annotations

from typing import Self

import numpy as np
import pandas as pd

from ferryman.drift._decision import decide
from ferryman.drift._parameters import Configured, check_integer, check_number
from ferryman.drift._sources import CurrentSource, ReferenceSource, load_current, load_reference
from ferryman.drift._summaries import kind_of
from ferryman.drift.base import DriftResult
from ferryman.errors import InvalidInputError, NotFittedError

#: Most categories kept per categorical column (the rest become "missing").
MAX_CODES = 250


class DomainClassifierDrift(Configured):
    """Domain-classifier drift test: ROC AUC with a permutation threshold.

    Args:
        max_rows: Rows sampled (seeded) from each side; more costs time, not accuracy
            of the p-value.
        folds: Cross-fitting folds.
        permutations: Label permutations for the null distribution.
        min_auc: Smallest AUC that counts as drift (0.55).
        alpha: Significance level in (0, 1).
        seed: Seed of the row sampling, the folds, the model and the permutations.

    Example:
        >>> import numpy as np, pandas as pd
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=2000)
        >>> reference = pd.DataFrame({"a": x, "b": x + rng.normal(0, 0.3, 2000)})
        >>> y = rng.normal(size=2000)
        >>> current = pd.DataFrame({"a": y, "b": -y + rng.normal(0, 0.3, 2000)})
        >>> DomainClassifierDrift().fit(reference).compare(current).drifted
        True
    """

    name = "domain_classifier"

    def __init__(
        self,
        *,
        max_rows: int = 5000,
        folds: int = 3,
        permutations: int = 1000,
        min_auc: float = 0.55,
        alpha: float = 0.05,
        seed: int = 0,
    ) -> None:
        owner = "DomainClassifierDrift"
        self.max_rows = check_integer(owner, "max_rows", max_rows, low=20)
        self.folds = check_integer(owner, "folds", folds, low=2)
        self.permutations = check_integer(owner, "permutations", permutations, low=100)
        self.min_auc = check_number(owner, "min_auc", min_auc, low=0.5, high=1)
        self.alpha = check_number(
            owner, "alpha", alpha, low=0, high=1, low_open=True, high_open=True
        )
        self.seed = check_integer(owner, "seed", seed, low=0)

    def fit(self, reference: ReferenceSource) -> Self:
        """Keep a seeded sample of at most ``max_rows`` reference rows.

        Raises:
            InvalidInputError: The reference is a stored profile (it has no rows), or
                cannot be read.
        """
        loaded = load_reference(reference)
        if not isinstance(loaded, pd.DataFrame):
            raise InvalidInputError(
                "DomainClassifierDrift needs reference rows; a stored profile has none. "
                "Pass the training data (a DataFrame or a Parquet/CSV file)."
            )
        self.reference_: pd.DataFrame = _sample(loaded, self.max_rows, self.seed)
        return self

    def compare(self, current: CurrentSource) -> DriftResult:
        """Test whether a classifier tells current rows from reference rows.

        Raises:
            NotFittedError: :meth:`fit` was not called first.
            InvalidInputError: Fewer than ``5 * folds`` rows on a side, or no column
                with a value in common.
        """
        if not hasattr(self, "reference_"):
            raise NotFittedError(
                "This DomainClassifierDrift is not fitted yet; call fit(reference) first."
            )
        sample = _sample(load_current(current), self.max_rows, self.seed + 1)
        reference = self.reference_
        columns = [
            c
            for c in reference.columns
            if c in sample.columns and (reference[c].notna().any() or sample[c].notna().any())
        ]
        if not columns:
            raise InvalidInputError("The reference and current samples share no usable column.")
        n, m = len(reference), len(sample)
        if min(n, m) < 5 * self.folds:
            raise InvalidInputError(
                f"DomainClassifierDrift needs at least {5 * self.folds} rows on each side; "
                f"got {n} reference and {m} current rows."
            )
        features, categorical = _encode(reference[columns], sample[columns])
        labels = np.concatenate((np.zeros(n, dtype=np.int8), np.ones(m, dtype=np.int8)))
        scores = self._out_of_fold_scores(features, categorical, labels)
        auc, null = _auc_with_null(scores, labels, self.permutations, self.seed)
        exceed = int(np.count_nonzero(null >= auc))
        return decide(
            method=self.name,
            statistic=auc,
            p_value=(1 + exceed) / (self.permutations + 1),
            effect_size=auc,
            min_effect=self.min_auc,
            null_band=float(np.quantile(null, 1 - self.alpha)),
            alpha=self.alpha,
            n_reference=n,
            n_current=m,
        )

    def _out_of_fold_scores(
        self, features: np.ndarray, categorical: np.ndarray, labels: np.ndarray
    ) -> np.ndarray:
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.model_selection import StratifiedKFold

        scores = np.zeros(len(labels))
        splitter = StratifiedKFold(n_splits=self.folds, shuffle=True, random_state=self.seed)
        for train, test in splitter.split(features, labels):
            model = HistGradientBoostingClassifier(
                max_iter=100,
                early_stopping=False,
                categorical_features=categorical if categorical.any() else None,
                random_state=self.seed,
            )
            model.fit(features[train], labels[train])
            scores[test] = model.predict_proba(features[test])[:, 1]
        return scores


def _sample(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    if len(frame) <= rows:
        return frame.reset_index(drop=True)
    return frame.sample(n=rows, random_state=seed).reset_index(drop=True)


def _encode(reference: pd.DataFrame, current: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Numeric columns as floats (inf as missing), categorical ones as codes."""
    columns: list[np.ndarray] = []
    categorical: list[bool] = []
    for name in reference.columns:
        both = pd.concat([reference[name], current[name]], ignore_index=True)
        if kind_of(both) == "numeric":
            values = np.array(
                pd.to_numeric(both, errors="coerce").to_numpy(np.float64, na_value=np.nan)
            )
            values[np.isinf(values)] = np.nan
            columns.append(values)
            categorical.append(False)
        else:
            frequent = both.value_counts(dropna=True).index[:MAX_CODES]
            codes = pd.Index(frequent).get_indexer(both).astype(np.float64)
            codes[codes < 0] = np.nan
            columns.append(codes)
            categorical.append(True)
    return np.column_stack(columns), np.asarray(categorical)


def _auc_with_null(
    scores: np.ndarray, labels: np.ndarray, permutations: int, seed: int
) -> tuple[float, np.ndarray]:
    """ROC AUC (Mann-Whitney, ties averaged) and its permutation distribution."""
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    positives = int(labels.sum())
    negatives = len(labels) - positives
    offset = positives * (positives + 1) / 2

    def auc_of(rank_sums: np.ndarray) -> np.ndarray:
        return np.asarray((rank_sums - offset) / (positives * negatives))

    observed = float(auc_of(np.array([ranks[labels == 1].sum()]))[0])
    rng = np.random.default_rng(seed)
    null = np.empty(permutations)
    chunk = 100
    for start in range(0, permutations, chunk):
        size = min(chunk, permutations - start)
        shuffled = rng.permuted(np.tile(labels, (size, 1)), axis=1)
        null[start : start + size] = auc_of(shuffled @ ranks)
    return observed, null
