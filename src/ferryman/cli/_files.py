"""Reading model files and tables named on the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ferryman.errors import InvalidInputError, UntrustedArtifactError
from ferryman.flavors.base import Prediction


def read_table(path: Path) -> pd.DataFrame:
    """Read a Parquet or CSV file into a DataFrame.

    Raises:
        InvalidInputError: Missing file, unknown extension or unreadable content.
    """
    if not path.is_file():
        raise InvalidInputError(f"Data file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".csv", ".txt"):
            return pd.read_csv(path)
    except (ValueError, OSError) as exc:
        raise InvalidInputError(f"Cannot read {str(path)!r}: {exc}") from exc
    raise InvalidInputError(f"Unsupported data file {str(path)!r}: expected .parquet or .csv")


def read_model_file(path: Path, *, trusted: bool) -> object:
    """Turn a model file or directory into what the flavors save.

    ONNX files and MLflow directories are passed on as paths; skops, XGBoost and
    LightGBM files are loaded with their framework; pickle files only with ``trusted``.

    Raises:
        InvalidInputError: Missing path or unknown kind of file.
        UntrustedArtifactError: A pickle file without ``trusted``.
    """
    if path.is_dir():
        if (path / "MLmodel").is_file():
            return path
        raise InvalidInputError(f"{str(path)!r} is a directory without an MLmodel file")
    if not path.is_file():
        raise InvalidInputError(f"Model file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return path
    if suffix == ".skops":
        import skops.io

        untrusted = skops.io.get_untrusted_types(file=path)
        if untrusted and not trusted:
            raise UntrustedArtifactError(
                f"{path} contains types skops does not trust by default: "
                f"{', '.join(untrusted)}. Review them, then pass --trusted"
            )
        return skops.io.load(path, trusted=untrusted)
    if suffix in (".joblib", ".pkl", ".pickle"):
        if not trusted:
            raise UntrustedArtifactError(
                f"{path} is a pickle file, which runs code when loaded; pass --trusted if you "
                "trust its origin"
            )
        import joblib

        return joblib.load(path)
    if suffix in (".json", ".ubj"):
        try:
            import xgboost
        except ImportError as exc:
            raise InvalidInputError(f"{path}: reading XGBoost models needs xgboost") from exc
        booster = xgboost.Booster()
        booster.load_model(str(path))
        return booster
    if suffix in (".txt", ".lgb"):
        try:
            import lightgbm
        except ImportError as exc:
            raise InvalidInputError(f"{path}: reading LightGBM models needs lightgbm") from exc
        return lightgbm.Booster(model_file=str(path))
    raise InvalidInputError(
        f"Unknown model file {str(path)!r}: expected .skops, .onnx, .json/.ubj (XGBoost), "
        ".txt (LightGBM), .joblib/.pkl (with --trusted) or an MLflow model directory"
    )


def write_predictions(prediction: Prediction, output: Path | None) -> dict[str, Any]:
    """Write predictions (and probabilities) to Parquet/CSV, or return them as lists."""
    frame = pd.DataFrame({"prediction": list(prediction.predictions)})
    if prediction.probabilities is not None:
        classes = prediction.classes or list(range(prediction.probabilities.shape[1]))
        for i, label in enumerate(classes):
            frame[f"proba_{label}"] = prediction.probabilities[:, i]
    if output is None:
        return {"rows": len(frame), "predictions": _plain(prediction.predictions)}
    if output.suffix.lower() in (".parquet", ".pq"):
        frame.to_parquet(output, index=False)
    elif output.suffix.lower() == ".csv":
        frame.to_csv(output, index=False)
    else:
        raise InvalidInputError(f"Unsupported output {str(output)!r}: expected .parquet or .csv")
    return {"rows": len(frame), "output": str(output)}


def _plain(values: np.ndarray) -> list[Any]:
    return [v.item() if isinstance(v, np.generic) else v for v in values.tolist()]
