"""A prepared store of served models, built once per session and copied for each test.

========  ================================  =========================================
endpoint  model                             what it is for
========  ================================  =========================================
cancer    cancer@production (sklearn)       a real classifier: 30 FP64 columns
toy       toy@production (python code)      predicts x * 2 (v1) or x * 3 (v2); sleeps
                                            ``delay`` seconds (first touching a file in
                                            $TOY_MARKS, if set); raises for x < 0;
                                            toy/3 has no signature and cannot load
mixed     mixed/1 (python code)             int, float, string and bool columns, and a
                                            passthrough column ``customer_id``
iris      iris/1 (sklearn on float32)       a tensor signature with 4 features
========  ================================  =========================================
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ferryman.config import Settings
from ferryman.registry import Registry
from ferryman.serving import EndpointService

TOY_CODE = """
import os
import time
import uuid
from pathlib import Path

import numpy as np


class Toy:
    def predict(self, frame):
        delay = float(frame["delay"].max())
        marks = os.environ.get("TOY_MARKS")
        if marks and delay > 0:  # tell a test that a slow call has started
            Path(marks, uuid.uuid4().hex).touch()
        if delay > 0:
            time.sleep(delay)
        x = frame["x"].to_numpy()
        if (x < 0).any():
            raise ValueError("x must not be negative")
        return x * FACTOR
"""

MIXED_CODE = """
import numpy as np


class Mixed:
    def predict(self, frame):
        bonus = np.where(frame["member"].to_numpy(dtype=bool), 100, 0)
        return frame["age"].to_numpy() + bonus + (frame["city"] == "Oslo").to_numpy()
"""

TOY_X = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "delay": [0.0, 0.0, 0.0, 0.0]})
MIXED_X = pd.DataFrame(
    {
        "age": [30, 40, 50],
        "income": [1.5, 2.5, 3.5],
        "city": ["Oslo", "Bergen", "Oslo"],
        "member": [True, False, True],
    }
)

#: Bound (seconds) on waiting for anything in these tests; never a timing assertion.
WAIT = 60.0


def _register_code(
    registry: Registry, directory: Path, name: str, code: str, class_name: str, X: Any
) -> None:
    path = directory / f"{name}_{registry.find_model(name) is not None}_{time.monotonic_ns()}.py"
    path.write_text(code)
    registry.register(
        None,
        name=name,
        X=X,
        flavor="python",
        trusted=True,
        flavor_options={"code": str(path), "class_name": class_name},
    )


def build_store(home: Path, code_dir: Path) -> None:
    """Register the models and create the endpoints of the module docstring."""
    from sklearn.datasets import load_breast_cancer, load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    settings = Settings(home=home, user="alice")
    with Registry.from_settings(settings) as registry:
        X, y = load_breast_cancer(return_X_y=True, as_frame=True)
        cancer = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
        registry.register(cancer, name="cancer", X=X, y=y)
        registry.set_alias("cancer", "production", 1)

        for factor in (2, 3):
            _register_code(
                registry, code_dir, "toy", TOY_CODE.replace("FACTOR", str(factor)), "Toy", TOY_X
            )
        path = code_dir / "toy_unsigned.py"
        path.write_text(TOY_CODE.replace("FACTOR", "4"))
        registry.register(
            None,
            name="toy",
            flavor="python",
            trusted=True,
            flavor_options={"code": str(path), "class_name": "Toy"},
        )
        registry.set_alias("toy", "production", 1)

        _register_code(registry, code_dir, "mixed", MIXED_CODE, "Mixed", MIXED_X)

        iris_X, iris_y = load_iris(return_X_y=True)
        iris = LogisticRegression(max_iter=500).fit(iris_X.astype(np.float32), iris_y)
        registry.register(iris, name="iris", X=iris_X.astype(np.float32), y=iris_y)

        endpoints = EndpointService(database=registry.database, user="alice")
        endpoints.create("cancer", model="cancer@production")
        endpoints.create("toy", model="toy@production", timeout_ms=2_000.0)
        endpoints.create("mixed", model="mixed/1", passthrough=["customer_id"])
        endpoints.create("iris", model="iris/1")


def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the store once per test process (later calls reuse it) and return its home."""
    root = tmp_path_factory.getbasetemp() / "ferryman-store-template"
    home = root / "home"
    if not (root / "complete").exists():
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir()
        build_store(home, root)
        (root / "complete").touch()
    return home


def fresh_copy(template_home: Path, directory: Path) -> Path:
    """Copy the store's home into ``directory`` and return the copy."""
    copy = directory / "home"
    shutil.copytree(template_home, copy, ignore=shutil.ignore_patterns("cache"))
    return copy
