"""Seldon MLServer, the peer: its own virtual environment, model folder and command line.

MLServer is never a Ferryman dependency. It lives in ``.venv-peers/mlserver``, created on
first use with :data:`PACKAGES` (MLServer 1.7.1 needs ``uvloop < 0.22``: its start-up
crashes with newer uvloop) and the scikit-learn version of the running interpreter, so
that the model pickled here with joblib loads there unchanged. ``httptools`` is added so
that MLServer's uvicorn parses HTTP with the same parser as Ferryman and the floor.

The server runs as one process (``parallel_workers: 0``: inference on the event loop, no
worker pool) with ``debug: false`` (no access log, like Ferryman's default); everything
else, Prometheus metrics included, is MLServer's default.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: The peer's virtual environment.
VENV = ROOT / ".venv-peers" / "mlserver"
#: What the peer's environment holds, besides this interpreter's scikit-learn version.
PACKAGES = ("mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop<0.22", "httptools", "joblib")
#: The model's name in MLServer's V2 paths.
MODEL_NAME = "cancer"


def venv_exists() -> bool:
    """Tell whether the peer's environment has MLServer installed."""
    return (VENV / "bin" / "mlserver").is_file()


def ensure_venv() -> Path:
    """Create the peer's environment if it is missing; return its ``mlserver`` command.

    Raises:
        subprocess.CalledProcessError: Creating the environment or installing failed.
    """
    mlserver = VENV / "bin" / "mlserver"
    if not venv_exists():
        packages = [*PACKAGES, f"scikit-learn=={metadata.version('scikit-learn')}"]
        print(f"==> creating {VENV} with {' '.join(packages)}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        python = str(VENV / "bin" / "python")
        subprocess.run([python, "-m", "pip", "install", "--quiet", *packages], check=True)
    return mlserver


def version() -> str:
    """Return the installed MLServer's version."""
    completed = subprocess.run(
        [str(VENV / "bin" / "python"), "-c", "import mlserver; print(mlserver.__version__)"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return completed.stdout.strip()


def write_model_folder(folder: Path, *, model_file: Path, ports: tuple[int, int, int]) -> Path:
    """Write MLServer's ``settings.json`` and ``model-settings.json`` for a joblib model.

    Args:
        folder: The folder to create (``mlserver start`` takes it).
        model_file: The joblib file of the fitted scikit-learn model.
        ports: The HTTP, gRPC and metrics ports, on 127.0.0.1.

    Returns:
        The folder.
    """
    folder.mkdir(parents=True, exist_ok=True)
    http_port, grpc_port, metrics_port = ports
    settings = {
        "debug": False,
        "parallel_workers": 0,
        "host": "127.0.0.1",
        "http_port": http_port,
        "grpc_port": grpc_port,
        "metrics_port": metrics_port,
    }
    model_settings = {
        "name": MODEL_NAME,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": str(model_file.resolve()), "version": "1"},
    }
    (folder / "settings.json").write_text(json.dumps(settings, indent=2), encoding="utf-8")
    (folder / "model-settings.json").write_text(
        json.dumps(model_settings, indent=2), encoding="utf-8"
    )
    return folder
