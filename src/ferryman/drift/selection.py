"""The automatic rule: which test each column gets, by type, cardinality and size.

========================  ==================  ====================  ===============
column                    test                effect size           minimum effect
========================  ==================  ====================  ===============
numeric, > 10 distinct    ``wasserstein``     W1 / reference sd     0.1
numeric, <= 10 distinct   ``jensen_shannon``  JS distance, base 2   0.1
categorical, 2 values     ``z``               Cohen's h             0.2
categorical, > 2 values   ``jensen_shannon``  JS distance, base 2   0.1
constant reference        ``jensen_shannon``  JS distance, base 2   0.1
========================  ==================  ====================  ===============

"Distinct" counts the non-empty bins between the reference's percentile cut points
(at most the number of distinct values; a stored profile keeps no distinct count);
"2 values" counts the categories of both samples together. Sample size does not
switch tests (Evidently's rule does, at 1,000 reference rows): it widens the
threshold instead. Every test's threshold is the larger of its minimum effect and the
null band at the actual sample sizes, and below ``min_rows`` values a column is
reported as ``insufficient-data`` with no verdict.
"""

from __future__ import annotations

from ferryman.drift._binning import is_constant
from ferryman.drift._summaries import CategoricalSummary, NumericSummary

#: Numeric columns with at most this many non-empty percentile bins are discrete.
MAX_DISCRETE_VALUES = 10


def choose_test(
    reference: NumericSummary | CategoricalSummary,
    current: NumericSummary | CategoricalSummary,
) -> str:
    """Return the registry name of the test the automatic rule picks for a column.

    Example:
        >>> from ferryman.drift import summarize
        >>> choose_test(summarize(["a", "b", "a"]), summarize(["b", "b"]))
        'z'
    """
    if isinstance(reference, CategoricalSummary):
        categories = set(reference.categories)
        if isinstance(current, CategoricalSummary):
            categories.update(current.categories)
        binary = len(categories) == 2 and reference.complete
        return "z" if binary else "jensen_shannon"
    if is_constant(reference) or reference.occupied_bins <= MAX_DISCRETE_VALUES:
        return "jensen_shannon"
    return "wasserstein"
