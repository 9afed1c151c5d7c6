"""Drift: noticing that production data no longer looks like the training data.

Models decay because the world moves. *Data drift* is a change in the inputs'
distribution; *prediction drift* a change in the model's outputs; *concept drift* a
change in the relation between inputs and the target, visible only with labels (or,
for calibrated classifiers, estimated without them).

Batch tests (:class:`KSTest`, :class:`WassersteinTest`, :class:`PSITest`,
:class:`JensenShannonTest`, :class:`ChiSquareTest`, :class:`ZTest`) compare one column
of a reference with one of a current sample, ``compare(reference, current)``, and
report a significance *and* an effect size; the decision is effect-size-first.
:class:`DataDrift` tests every column (choosing each test by :func:`choose_test`),
controls the false discovery rate across them, and decides for the dataset;
:class:`DomainClassifierDrift` sees joint changes; :func:`drift_report` puts it all
in one JSON or HTML report. References are stored profiles, DataFrames or files.

Streaming detectors (:class:`ADWIN`, :class:`PageHinkley`, :class:`DDM`) watch one
value at a time, ``update(x)``, typically a model's error stream;
:func:`performance_by_window` and :class:`CBPE` give realised and estimated
performance per window. Every default is listed in ``docs/drift.md``.
"""

from __future__ import annotations

from ferryman.drift._summaries import CategoricalSummary, NumericSummary, summarize
from ferryman.drift.adwin import ADWIN
from ferryman.drift.base import (
    DriftResult,
    DriftTest,
    FeatureKind,
    Sample,
    Status,
    StreamingDetector,
)
from ferryman.drift.cbpe import CBPE, PerformanceEstimate, expected_calibration_error
from ferryman.drift.chi2 import ChiSquareTest
from ferryman.drift.dataset import DataDrift, DataDriftResult, Distribution, FeatureDrift
from ferryman.drift.ddm import DDM
from ferryman.drift.fdr import benjamini_hochberg
from ferryman.drift.jensen_shannon import JensenShannonTest
from ferryman.drift.ks import KSTest
from ferryman.drift.methods import DETECTORS, TESTS, get_detector, get_test
from ferryman.drift.multivariate import DomainClassifierDrift
from ferryman.drift.page_hinkley import PageHinkley
from ferryman.drift.performance import PerformanceResult, WindowPerformance, performance_by_window
from ferryman.drift.psi import PSI_FLOOR, PSITest
from ferryman.drift.report import (
    DriftReport,
    MultivariateSection,
    PredictionSection,
    Section,
    drift_report,
)
from ferryman.drift.selection import MAX_DISCRETE_VALUES, choose_test
from ferryman.drift.wasserstein import WassersteinTest
from ferryman.drift.ztest import ZTest

__all__ = [
    "ADWIN",
    "CBPE",
    "DDM",
    "DETECTORS",
    "MAX_DISCRETE_VALUES",
    "PSI_FLOOR",
    "TESTS",
    "CategoricalSummary",
    "ChiSquareTest",
    "DataDrift",
    "DataDriftResult",
    "Distribution",
    "DomainClassifierDrift",
    "DriftReport",
    "DriftResult",
    "DriftTest",
    "FeatureDrift",
    "FeatureKind",
    "JensenShannonTest",
    "KSTest",
    "MultivariateSection",
    "NumericSummary",
    "PSITest",
    "PageHinkley",
    "PerformanceEstimate",
    "PerformanceResult",
    "PredictionSection",
    "Sample",
    "Section",
    "Status",
    "StreamingDetector",
    "WassersteinTest",
    "WindowPerformance",
    "ZTest",
    "benjamini_hochberg",
    "choose_test",
    "drift_report",
    "expected_calibration_error",
    "get_detector",
    "get_test",
    "performance_by_window",
    "summarize",
]
