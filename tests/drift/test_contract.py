"""The contract every batch test and streaming detector keeps, run over the registry."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest

from ferryman.drift import (
    ADWIN,
    CBPE,
    DDM,
    DETECTORS,
    TESTS,
    DataDrift,
    DomainClassifierDrift,
    DriftTest,
    PageHinkley,
    StreamingDetector,
    get_detector,
    get_test,
)
from ferryman.errors import DriftMethodNotFoundError, InvalidInputError

# Every configurable drift component, with a bad parameter and the message it must give.
BAD_PARAMETERS: dict[str, tuple[type[Any], dict[str, Any], str]] = {
    "ks": (TESTS["ks"], {"method": "fast"}, r"KSTest: method must be one of auto, exact, asymp"),
    "wasserstein": (
        TESTS["wasserstein"],
        {"min_effect": -0.1},
        r"WassersteinTest: min_effect must be a finite number >= 0, got -0\.1",
    ),
    "psi": (
        TESTS["psi"],
        {"alpha": 1.5},
        r"PSITest: alpha must be a finite number > 0 and < 1, got 1\.5",
    ),
    "jensen_shannon": (
        TESTS["jensen_shannon"],
        {"min_effect": 2},
        r"JensenShannonTest: min_effect must be a finite number >= 0 and <= 1, got 2",
    ),
    "chi2": (TESTS["chi2"], {"min_expected": float("nan")}, r"ChiSquareTest: min_expected"),
    "z": (TESTS["z"], {"alpha": 0}, r"ZTest: alpha must be a finite number > 0 and < 1, got 0"),
    "adwin": (ADWIN, {"clock": 0}, r"ADWIN: clock must be an integer >= 1, got 0"),
    "ddm": (
        DDM,
        {"warning_level": 3.0, "drift_level": 2.0},
        r"DDM: drift_level \(2\.0\) must be >= warning_level \(3\.0\)",
    ),
    "page_hinkley": (
        PageHinkley,
        {"direction": "up"},
        r"PageHinkley: direction must be one of both, increase, decrease; got 'up'",
    ),
    "data_drift": (DataDrift, {"drift_share": 0}, r"DataDrift: drift_share must be"),
    "domain_classifier": (
        DomainClassifierDrift,
        {"min_auc": 0.4},
        r"DomainClassifierDrift: min_auc must be a finite number >= 0\.5 and <= 1",
    ),
    "cbpe": (CBPE, {"bins": 0}, r"CBPE: bins must be an integer >= 1, got 0"),
}


def _numeric_samples() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    return rng.normal(size=400), rng.normal(0.4, 1.2, size=300)


def _categorical_samples() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    return rng.choice(["x", "y"], 400, p=[0.7, 0.3]), rng.choice(["x", "y"], 300, p=[0.5, 0.5])


def _samples(test: DriftTest) -> tuple[np.ndarray, np.ndarray]:
    return _numeric_samples() if "numeric" in test.kinds else _categorical_samples()


@pytest.mark.parametrize("name", sorted(TESTS))
def test_every_test_is_default_constructible_and_named_as_registered(name: str) -> None:
    test = get_test(name)
    assert test.name == name
    assert isinstance(test, DriftTest)


@pytest.mark.parametrize("name", sorted(TESTS))
def test_every_test_round_trips_through_repr_and_clone(name: str) -> None:
    namespace = {cls.__name__: cls for cls in TESTS.values()}
    test = get_test(name)
    rebuilt = eval(repr(test), namespace)  # repr shows the constructor call
    assert repr(rebuilt) == repr(test) == repr(test.clone())


@pytest.mark.parametrize("name", sorted(TESTS))
def test_every_test_pickles_and_gives_the_same_result_after(name: str) -> None:
    test = get_test(name)
    reference, current = _samples(test)
    copy = pickle.loads(pickle.dumps(test))
    assert copy.compare(reference, current) == test.compare(reference, current)


@pytest.mark.parametrize("name", sorted(TESTS))
def test_every_test_is_reproducible(name: str) -> None:
    reference, current = _samples(get_test(name))
    assert get_test(name).compare(reference, current) == get_test(name).compare(reference, current)


@pytest.mark.parametrize("name", sorted(TESTS))
def test_every_test_leaves_its_inputs_unchanged(name: str) -> None:
    reference, current = _samples(get_test(name))
    before = (reference.copy(), current.copy())
    get_test(name).compare(reference, current)
    assert np.array_equal(reference, before[0]) and np.array_equal(current, before[1])


@pytest.mark.parametrize("name", sorted(TESTS))
def test_every_test_reports_significance_and_effect_size(name: str) -> None:
    result = get_test(name).compare(*_samples(get_test(name)))
    assert result.p_value is not None and 0 <= result.p_value <= 1
    assert result.effect_size >= 0 and result.threshold >= result.min_effect
    assert result.drifted  # every sample pair above differs clearly


@pytest.mark.parametrize("name", sorted(BAD_PARAMETERS))
def test_every_component_reports_a_bad_parameter_clearly(name: str) -> None:
    cls, params, message = BAD_PARAMETERS[name]
    with pytest.raises(InvalidInputError, match=message):
        cls(**params)


def test_an_unknown_test_name_lists_the_valid_ones() -> None:
    with pytest.raises(
        DriftMethodNotFoundError,
        match=r"Unknown drift method 'kss'\. Available: chi2, jensen_shannon, ks, psi, "
        r"wasserstein, z\.",
    ):
        get_test("kss")


def test_an_unknown_detector_name_lists_the_valid_ones() -> None:
    with pytest.raises(
        DriftMethodNotFoundError,
        match=r"Unknown drift detector 'cusum'\. Available: adwin, ddm, page_hinkley\.",
    ):
        get_detector("cusum")


def _error_stream() -> np.ndarray:
    rng = np.random.default_rng(5)
    return np.concatenate([rng.random(3000) < 0.1, rng.random(3000) < 0.4]).astype(float)


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_every_detector_is_default_constructible_and_named_as_registered(name: str) -> None:
    detector = get_detector(name)
    assert detector.name == name
    assert isinstance(detector, StreamingDetector)
    assert not detector.drift_detected and detector.detections == ()


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_every_detector_round_trips_through_repr_and_clone(name: str) -> None:
    namespace = {cls.__name__: cls for cls in DETECTORS.values()}
    detector = get_detector(name)
    assert repr(eval(repr(detector), namespace)) == repr(detector) == repr(detector.clone())


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_every_detector_pickles_mid_stream_and_continues_identically(name: str) -> None:
    stream = _error_stream()
    detector = get_detector(name)
    for x in stream[:3500]:
        detector.update(x)
    copy = pickle.loads(pickle.dumps(detector))
    for x in stream[3500:]:
        detector.update(x)
        copy.update(x)
    assert copy.detections == detector.detections


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_every_detector_finds_the_change_and_resets_on_the_next_update(name: str) -> None:
    detector = get_detector(name)
    flags = []
    for x in _error_stream():
        detector.update(x)
        flags.append(detector.drift_detected)
    first = detector.detections[0]
    assert 3000 <= first < 4000
    assert flags[first] and not flags[first + 1]


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_every_detector_clone_starts_fresh(name: str) -> None:
    detector = get_detector(name)
    for x in _error_stream():
        detector.update(x)
    clone = detector.clone()
    assert clone.detections == () and not clone.drift_detected


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_every_detector_rejects_values_it_cannot_use(name: str) -> None:
    with pytest.raises(InvalidInputError, match=r"\.update needs"):
        get_detector(name).update(float("nan"))
