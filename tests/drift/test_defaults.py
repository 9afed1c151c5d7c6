"""Golden test: the defaults table in docs/drift.md is the code's defaults, row by row."""

from __future__ import annotations

import ast
import importlib
import inspect
import math
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

import ferryman.drift as drift

DOCS = Path(__file__).resolve().parents[2] / "docs" / "drift.md"
ROW = re.compile(r"^\| (?P<setting>[^|]+?) \| `(?P<default>[^`]+)` \| (?P<pinned>[^|]+?) \|$")
CALL = re.compile(r"^`(?P<owner>[\w.]+)\((?P<parameter>\w+)\)`$")
CONSTANT = re.compile(r"^`(?P<module>[\w.]+)\.(?P<name>[A-Z_]+)`$")
# Every public configurable whose constructor arguments must all be in the table.
CONFIGURABLE = [
    drift.KSTest,
    drift.WassersteinTest,
    drift.PSITest,
    drift.JensenShannonTest,
    drift.ChiSquareTest,
    drift.ZTest,
    drift.DataDrift,
    drift.DomainClassifierDrift,
    drift.ADWIN,
    drift.PageHinkley,
    drift.DDM,
    drift.CBPE,
    drift.performance_by_window,
]


def _rows() -> list[tuple[str, object, str]]:
    section = DOCS.read_text(encoding="utf-8").split("## Defaults", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        match = ROW.match(line.strip())
        if match:
            default = ast.literal_eval(match["default"])
            rows.append((match["setting"], default, match["pinned"]))
    return rows


ROWS = _rows()


def _shares_are_floored_only_for_psi() -> None:
    assert drift.JensenShannonTest().compare(["a"] * 10, ["b"] * 10).statistic == 1.0


def _js_base_2() -> None:
    result = drift.JensenShannonTest().compare(["a"] * 30 + ["b"] * 70, ["a"] * 60 + ["b"] * 40)
    assert result.statistic == pytest.approx(jensenshannon([0.3, 0.7], [0.6, 0.4], base=2))


def _psi_natural_log() -> None:
    result = drift.PSITest().compare(["a"] * 30 + ["b"] * 70, ["a"] * 60 + ["b"] * 40)
    expected = 0.3 * math.log(0.6 / 0.3) + (-0.3) * math.log(0.4 / 0.7)
    assert result.statistic == pytest.approx(expected)


def _reference_deciles() -> None:
    reference = np.random.default_rng(0).normal(size=10_000)
    current = reference[reference > np.quantile(reference, 0.9)]
    # All current values in the top decile: PSI over ten reference bins of 10 %.
    psi = drift.PSITest().compare(reference, current).statistic
    floor = drift.PSI_FLOOR
    expected = 9 * (floor - 0.1) * math.log(floor / 0.1) + 0.9 * math.log(1 / 0.1)
    assert psi == pytest.approx(expected, rel=1e-3)


def _hundred_and_one_levels() -> None:
    summary = drift.summarize(np.arange(1000.0))
    assert isinstance(summary, drift.NumericSummary) and len(summary.levels) == 101


def _nan_is_missing() -> None:
    import pandas as pd

    reference = pd.DataFrame({"x": [1.0, None, 2.0, np.nan] * 100})
    feature = drift.DataDrift().fit(reference).compare(reference).features[0]
    assert (feature.n_reference, feature.reference_missing) == (200, 0.5)


def _infinity_is_missing() -> None:
    import pandas as pd

    reference = pd.DataFrame({"x": [1.0, np.inf, 2.0, -np.inf] * 100})
    feature = drift.DataDrift().fit(reference).compare(reference).features[0]
    assert (feature.n_reference, feature.reference_missing) == (200, 0.5)


def _population_std() -> None:
    reference = np.array([0.0, 1.0, 2.0, 3.0])
    result = drift.WassersteinTest().compare(reference, reference + 1)
    assert result.effect_size == pytest.approx(1 / np.std(reference, ddof=0))


BEHAVIOURS: dict[str, tuple[object, Callable[[], None]]] = {
    "Jensen-Shannon log base": (2, _js_base_2),
    "PSI log base": ("e", _psi_natural_log),
    "Jensen-Shannon zero-bin smoothing": (None, _shares_are_floored_only_for_psi),
    "Numeric bin rule (PSI, Jensen-Shannon, chi-square)": ("reference deciles", _reference_deciles),
    "Quantile levels of summaries": (101, _hundred_and_one_levels),
    "NaN and None": ("missing: left out, share reported", _nan_is_missing),
    "+inf and -inf": ("left out, counted in the missing share", _infinity_is_missing),
    "Wasserstein spread": ("reference standard deviation (ddof=0)", _population_std),
}


def _actual(pinned: str) -> object:
    call = CALL.match(pinned)
    if call:
        owner = eval(call["owner"], {"ferryman": importlib.import_module("ferryman")})
        importlib.import_module("ferryman.drift")
        return inspect.signature(owner).parameters[call["parameter"]].default
    constant = CONSTANT.match(pinned)
    if constant is None:
        raise AssertionError(f"Cannot read the 'Pinned by' cell {pinned!r}")
    return getattr(importlib.import_module(constant["module"]), constant["name"])


def test_the_defaults_table_is_found_and_not_empty() -> None:
    assert len(ROWS) > 60


@pytest.mark.parametrize(
    ("setting", "default", "pinned"),
    [row for row in ROWS if row[2] != "behaviour"],
    ids=[row[0] for row in ROWS if row[2] != "behaviour"],
)
def test_documented_default_equals_the_code(setting: str, default: object, pinned: str) -> None:
    actual = _actual(pinned)
    assert actual == default and type(actual) is type(default), f"{setting}: {actual!r}"


@pytest.mark.parametrize(
    ("setting", "default"),
    [row[:2] for row in ROWS if row[2] == "behaviour"],
    ids=[row[0] for row in ROWS if row[2] == "behaviour"],
)
def test_documented_behaviour_holds(setting: str, default: object) -> None:
    documented, check = BEHAVIOURS[setting]
    assert default == documented
    check()


def test_every_behaviour_check_is_documented() -> None:
    assert set(BEHAVIOURS) == {row[0] for row in ROWS if row[2] == "behaviour"}


@pytest.mark.parametrize("owner", CONFIGURABLE, ids=lambda o: o.__name__)
def test_every_constructor_default_is_in_the_table(owner: object) -> None:
    documented = {row[2] for row in ROWS}
    for parameter in inspect.signature(owner).parameters.values():  # type: ignore[arg-type]
        if parameter.default is inspect.Parameter.empty or parameter.kind is parameter.VAR_KEYWORD:
            continue
        cell = f"`ferryman.drift.{owner.__name__}({parameter.name})`"  # type: ignore[attr-defined]
        assert cell in documented, f"{cell} is missing from the defaults table"
