"""The python flavor: user objects with predict(frame), pickled or loaded from source."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ferryman.errors import (
    InvalidInputError,
    PredictionError,
    UnsupportedModelError,
    UntrustedArtifactError,
)
from ferryman.flavors import get_flavor

from .conftest import Dataset, Roundtrip

FLAVOR = get_flavor("python")


def _as(kind: str, values: np.ndarray) -> Any:
    if kind == "list":
        return values.tolist()
    if kind == "series":
        return pd.Series(values, name="prediction")
    if kind == "frame":
        return pd.DataFrame({"prediction": values})
    if kind == "column":
        return values.reshape(-1, 1)
    return values


class ThresholdModel:
    """Predicts 1 where the first column exceeds ``threshold``, as ``output`` says."""

    def __init__(self, output: str = "array", threshold: float = 5.5) -> None:
        self.output = output
        self.threshold = threshold

    def predict(self, frame: pd.DataFrame) -> Any:
        return _as(self.output, (frame.iloc[:, 0].to_numpy() > self.threshold).astype(int))


class ProbabilisticModel(ThresholdModel):
    """Also answers ``predict_proba`` with one DataFrame column per class."""

    def predict_proba(self, frame: pd.DataFrame) -> pd.DataFrame:
        yes = 1 / (1 + np.exp(self.threshold - frame.iloc[:, 0].to_numpy()))
        return pd.DataFrame({"no": 1 - yes, "yes": yes})


class BrokenModel:
    """Returns a scalar instead of one prediction per row."""

    def predict(self, frame: pd.DataFrame) -> Any:
        return 42


class ScriptModel:
    """Pretends to be defined in a script, which cannot be imported where it is served."""

    __module__ = "__main__"

    def predict(self, frame: pd.DataFrame) -> Any:
        return frame


CODE = textwrap.dedent(
    """
    import numpy as np


    class TripleFirstColumn:
        def predict(self, frame):
            return np.asarray(frame)[:, 0] * 3
    """
)


@pytest.mark.parametrize("output", ["list", "array", "column", "series", "frame"])
def test_python_normalises_predict_output_to_one_dimensional_array(
    roundtrip: Roundtrip, iris: Dataset, output: str
) -> None:
    _, loaded = roundtrip(FLAVOR, ThresholdModel(output=output), trusted=True)
    result = loaded.predict(iris.frame)

    expected = (iris.frame.iloc[:, 0].to_numpy() > 5.5).astype(int)
    assert result.predictions.shape == (len(iris.frame),)
    np.testing.assert_array_equal(result.predictions, expected)


def test_python_takes_probabilities_and_classes_from_predict_proba(
    roundtrip: Roundtrip, iris: Dataset
) -> None:
    model = ProbabilisticModel()

    _, loaded = roundtrip(FLAVOR, model, trusted=True)
    result = loaded.predict(iris.frame)

    np.testing.assert_array_equal(result.probabilities, model.predict_proba(iris.frame))
    assert result.classes == ["no", "yes"]


def test_python_records_the_class_by_reference(roundtrip: Roundtrip) -> None:
    saved, _ = roundtrip(FLAVOR, ThresholdModel(), trusted=True)

    assert saved.meta["kind"] == "object"
    assert saved.meta["class"] == f"{__name__}.ThresholdModel"


def test_python_refuses_to_save_without_trusted(tmp_path: Path) -> None:
    with pytest.raises(UntrustedArtifactError, match="trusted=True"):
        FLAVOR.save(ThresholdModel(), tmp_path, trusted=False, options={})


def test_python_refuses_to_load_artifact_not_recorded_as_trusted(tmp_path: Path) -> None:
    saved = FLAVOR.save(ThresholdModel(), tmp_path, trusted=True, options={})

    with pytest.raises(UntrustedArtifactError, match="not recorded as trusted"):
        FLAVOR.load(saved.path, {**saved.meta, "trusted": False}, scratch=tmp_path)


def test_python_refuses_class_defined_in_main_and_suggests_code(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedModelError, match=r"__main__\.ScriptModel.*'code'"):
        FLAVOR.save(ScriptModel(), tmp_path, trusted=True, options={})


def test_python_refuses_locally_defined_class(tmp_path: Path) -> None:
    class Local:
        def predict(self, frame: pd.DataFrame) -> Any:
            return frame

    with pytest.raises(UnsupportedModelError, match=r"cannot be imported.*'code'"):
        FLAVOR.save(Local(), tmp_path, trusted=True, options={})


def test_python_reports_unusable_predict_output(roundtrip: Roundtrip, iris: Dataset) -> None:
    _, loaded = roundtrip(FLAVOR, BrokenModel(), trusted=True)

    with pytest.raises(PredictionError, match="of type int; expected a list"):
        loaded.predict(iris.frame)


def test_python_code_roundtrip_instantiates_the_named_class(
    roundtrip: Roundtrip, tmp_path: Path, iris: Dataset
) -> None:
    code = tmp_path / "model_code.py"
    code.write_text(CODE)
    options = {"code": str(code), "class_name": "TripleFirstColumn"}

    saved, loaded = roundtrip(FLAVOR, None, trusted=True, options=options)

    assert (saved.meta["kind"], saved.meta["code_file"]) == ("code", "model_code.py")
    np.testing.assert_array_equal(
        loaded.predict(iris.frame).predictions, iris.frame.iloc[:, 0].to_numpy() * 3
    )


def test_python_code_artifact_is_deterministic(tmp_path: Path) -> None:
    code = tmp_path / "model_code.py"
    code.write_text(CODE)
    options = {"code": code, "class_name": "TripleFirstColumn"}
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()

    first = FLAVOR.save(None, tmp_path / "first", trusted=True, options=options)
    second = FLAVOR.save(None, tmp_path / "second", trusted=True, options=options)

    assert first.path.read_bytes() == second.path.read_bytes()


def test_python_code_must_define_the_named_class(tmp_path: Path) -> None:
    code = tmp_path / "model_code.py"
    code.write_text(CODE)

    with pytest.raises(InvalidInputError, match="does not define 'Missing'"):
        FLAVOR.save(None, tmp_path, trusted=True, options={"code": code, "class_name": "Missing"})


def test_python_code_refuses_a_live_object_as_well(tmp_path: Path) -> None:
    code = tmp_path / "model_code.py"
    code.write_text(CODE)
    options = {"code": code, "class_name": "TripleFirstColumn"}

    with pytest.raises(InvalidInputError, match="not both"):
        FLAVOR.save(ThresholdModel(), tmp_path, trusted=True, options=options)
