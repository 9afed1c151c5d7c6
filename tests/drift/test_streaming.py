"""Golden streams: seeded streams with a change at index 5,000, exact detection indices."""

from __future__ import annotations

import numpy as np
import pytest

from ferryman.drift import ADWIN, DDM, PageHinkley, StreamingDetector
from ferryman.drift.page_hinkley import average_run_length, normal_threshold
from ferryman.errors import InvalidInputError

CHANGE = 5000


def _normal_stream() -> np.ndarray:
    """N(0, 1), then N(0.8, 1) from index 5,000."""
    rng = np.random.default_rng(2026)
    return np.concatenate([rng.normal(0, 1, CHANGE), rng.normal(0.8, 1, CHANGE)])


def _error_stream() -> np.ndarray:
    """Errors at 10 %, then at 25 % from index 5,000."""
    rng = np.random.default_rng(2026)
    return np.concatenate([rng.random(CHANGE) < 0.1, rng.random(CHANGE) < 0.25]).astype(float)


def _run(detector: StreamingDetector, stream: np.ndarray) -> tuple[int, ...]:
    for x in stream:
        detector.update(x)
    return detector.detections


GOLDEN = [
    ("adwin-normal", ADWIN(), _normal_stream, (5055,)),
    ("adwin-errors", ADWIN(), _error_stream, (5055, 5087, 5119, 6623)),
    ("page_hinkley-normal", PageHinkley(), _normal_stream, (5038,)),
    ("page_hinkley-errors", PageHinkley(), _error_stream, (5035, 6409)),
    ("ddm-errors", DDM(), _error_stream, (63, 7041)),
]


@pytest.mark.parametrize(
    ("detector", "stream", "expected"),
    [case[1:] for case in GOLDEN],
    ids=[case[0] for case in GOLDEN],
)
def test_detector_reports_the_golden_detection_indices(
    detector: StreamingDetector, stream: object, expected: tuple[int, ...]
) -> None:
    assert _run(detector, stream()) == expected  # type: ignore[operator]


def test_adwin_drops_the_window_before_the_change() -> None:
    detector = ADWIN()
    for x in _normal_stream():
        detector.update(x)
    assert detector.estimation == pytest.approx(0.8, abs=0.1)
    assert detector.width < 2 * CHANGE - 4000  # at least 4,000 pre-change values dropped


def test_page_hinkley_learns_its_threshold_after_the_warm_up() -> None:
    detector = PageHinkley(warmup=100)
    for x in _normal_stream()[:99]:
        detector.update(x)
    assert detector.thresholds is None
    detector.update(0.0)
    assert detector.thresholds is not None


def test_page_hinkley_threshold_gives_the_target_run_length_with_a_known_mean() -> None:
    from scipy.special import ndtr

    h = normal_threshold(0.25, 10_000.0, 10**12, 1)  # an exact mean: no estimation error
    arl = average_run_length(lambda y: np.asarray(ndtr(y + 0.25)), h)
    assert arl == pytest.approx(10_000, rel=0.01)
    # Siegmund's approximation of the same run length agrees to a few percent.
    b = h + 1.166
    assert (np.exp(0.5 * b) - 0.5 * b - 1) / (2 * 0.25**2) == pytest.approx(10_000, rel=0.05)


def test_page_hinkley_direction_increase_ignores_a_decrease() -> None:
    rng = np.random.default_rng(2)
    stream = np.concatenate([rng.normal(0, 1, 2000), rng.normal(-1.5, 1, 2000)])
    assert _run(PageHinkley(direction="increase"), stream) == ()
    assert _run(PageHinkley(direction="decrease"), stream)[0] >= 2000


def test_ddm_raises_a_warning_before_the_change_is_confirmed() -> None:
    detector = DDM()
    warned = False
    for x in _error_stream()[100:]:
        detector.update(x)
        warned = warned or detector.warning_detected
        if detector.drift_detected:
            break
    assert warned


def test_ddm_accepts_only_error_flags() -> None:
    with pytest.raises(
        InvalidInputError, match=r"DDM\.update needs 0 or 1 \(an error flag\), got 0\.5"
    ):
        DDM().update(0.5)
