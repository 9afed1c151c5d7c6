"""What each contender is sent and how its answer is read.

Every contender gets the same rows of scikit-learn's breast-cancer data, in the layout
its protocol expects, and each answer yields the class probabilities, which the
benchmark checks against the model's own before measuring anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd


@dataclass(frozen=True)
class Target:
    """One contender's URL, request body and how to read probabilities from its answer."""

    url: str
    body: Callable[[pd.DataFrame], bytes]
    probabilities: Callable[[Any], np.ndarray]


# -- request bodies and answers ---------------------------------------------------------------


def native_body(rows: pd.DataFrame) -> bytes:
    """``{"instances": [{column: value, ...}, ...]}``."""
    return orjson.dumps({"instances": rows.to_dict(orient="records")})


def ferryman_v2_body(rows: pd.DataFrame) -> bytes:
    """One FP64 input of shape ``[n]`` per column."""
    inputs = [
        {"name": str(name), "shape": [len(rows)], "datatype": "FP64", "data": values.tolist()}
        for name, values in rows.items()
    ]
    return orjson.dumps({"inputs": inputs})


def tensor_v2_body(rows: pd.DataFrame) -> bytes:
    """One FP64 tensor ``[n, 30]``, asking for the probabilities."""
    tensor = {
        "name": "input-0",
        "shape": list(rows.shape),
        "datatype": "FP64",
        "data": rows.to_numpy().tolist(),
    }
    return orjson.dumps({"inputs": [tensor], "outputs": [{"name": "predict_proba"}]})


def floor_body(rows: pd.DataFrame) -> bytes:
    """``{"instances": [[x1, ..., x30], ...]}``."""
    return orjson.dumps({"instances": rows.to_numpy().tolist()})


def probabilities_field(answer: Any) -> np.ndarray:
    """The ``probabilities`` of a native or floor answer."""
    return np.asarray(answer["probabilities"], dtype=np.float64)


def v2_probabilities(answer: Any) -> np.ndarray:
    """The ``predict_proba`` output of a V2 answer, in its shape."""
    for output in answer["outputs"]:
        if output["name"] == "predict_proba":
            data = np.asarray(output["data"], dtype=np.float64)
            return data.reshape(output["shape"])
    raise ValueError(f"no predict_proba output in {answer!r}")
