"""The registry of drift methods: every batch test and streaming detector by name.

Literal dicts, never filled by import side effects: what is listed here is what exists.
"""

from __future__ import annotations

from collections.abc import Mapping

from ferryman.drift.adwin import ADWIN
from ferryman.drift.base import DriftTest, StreamingDetector
from ferryman.drift.chi2 import ChiSquareTest
from ferryman.drift.ddm import DDM
from ferryman.drift.jensen_shannon import JensenShannonTest
from ferryman.drift.ks import KSTest
from ferryman.drift.page_hinkley import PageHinkley
from ferryman.drift.psi import PSITest
from ferryman.drift.wasserstein import WassersteinTest
from ferryman.drift.ztest import ZTest
from ferryman.errors import DriftMethodNotFoundError

#: Batch two-sample tests by name.
TESTS: Mapping[str, type[DriftTest]] = {
    "chi2": ChiSquareTest,
    "jensen_shannon": JensenShannonTest,
    "ks": KSTest,
    "psi": PSITest,
    "wasserstein": WassersteinTest,
    "z": ZTest,
}

#: Streaming change detectors by name.
DETECTORS: Mapping[str, type[StreamingDetector]] = {
    "adwin": ADWIN,
    "ddm": DDM,
    "page_hinkley": PageHinkley,
}


def get_test(name: str, **params: float | int | str) -> DriftTest:
    """Return a new batch test by registry name, configured with ``params``.

    Raises:
        DriftMethodNotFoundError: No test has that name; the message lists them.
        InvalidInputError: A parameter is invalid.

    Example:
        >>> get_test("psi", min_effect=0.2)
        PSITest(min_effect=0.2, alpha=0.05, floor=0.0001, min_expected=5.0)
    """
    cls = TESTS.get(name)
    if cls is None:
        raise DriftMethodNotFoundError(
            f"Unknown drift method {name!r}. Available: {', '.join(sorted(TESTS))}."
        )
    return cls(**params)


def get_detector(name: str, **params: float | int | str) -> StreamingDetector:
    """Return a new streaming detector by registry name, configured with ``params``.

    Raises:
        DriftMethodNotFoundError: No detector has that name; the message lists them.
        InvalidInputError: A parameter is invalid.
    """
    cls = DETECTORS.get(name)
    if cls is None:
        raise DriftMethodNotFoundError(
            f"Unknown drift detector {name!r}. Available: {', '.join(sorted(DETECTORS))}."
        )
    return cls(**params)
