"""The registry benchmark: registering and loading models, each against its floor.

Measures in one run, and prints as Markdown tables (the JSON goes to
``bench/results/registry.json``):

1. For each flavor (sklearn, onnx, xgboost, lightgbm, mlflow, python), on a small
   breast-cancer classifier: the time of ``Registry.register`` (with ``X`` and ``y``, as
   recommended), and the time from ``Registry.load(ref)`` to the first prediction on one
   row, next to the *floor*: the framework's own load of the same stored file plus one
   prediction. Each repetition registers version 1 of a new model in a fresh registry
   home (a temporary directory with SQLite and local artifacts), so no repetition finds
   its artifact already stored (content-addressed storage would skip the write) or its
   MLflow archive already unpacked; the load is made in that same registry.
2. Loading a model of about 50 MB (a scikit-learn random forest stored with skops, a
   LightGBM and an XGBoost booster) with ``Registry.load`` against the framework's own
   load of the same stored file and against the SHA-256 of that file, which Ferryman
   verifies on every load. The contenders alternate order from round to round.

Ratios are medians of per-round (or per-repetition) ratios from the same process.

Usage::

    python bench/registry.py              # full run, 2 to 3 minutes on 2 cores
    python bench/registry.py --smoke      # tiny sizes, one repetition, < 30 s
"""

from __future__ import annotations

import argparse
import gc
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _arguments import positive_int
from _registry_cases import FlavorCase, LargeCase, flavor_cases, large_cases
from _report import (
    format_bytes,
    format_seconds,
    machine_info,
    machine_lines,
    markdown_table,
    write_json,
)
from _timing import interleave, median_ratio, summarize, timed

from ferryman.config import Settings
from ferryman.registry import Registry, VersionInfo
from ferryman.store import BlobRef

RESULTS_DIR = Path(__file__).resolve().parent / "results"
RESULT_FILE = "registry.json"


@dataclass(frozen=True)
class Config:
    """How much to measure.

    Attributes:
        repeat: Measured registrations (and loads) per flavor.
        warmup: Unmeasured repetitions first, which import frameworks and fill caches.
        rounds: Measured rounds per large model.
        large_bytes: Target artifact size of the large models, in bytes.
    """

    repeat: int
    warmup: int
    rounds: int
    large_bytes: int


FULL = Config(repeat=21, warmup=1, rounds=9, large_bytes=50_000_000)
SMOKE = Config(repeat=1, warmup=0, rounds=1, large_bytes=1_000_000)


# -- measurements ----------------------------------------------------------------------


def bench_flavor(
    case: FlavorCase, X: pd.DataFrame, y: np.ndarray, config: Config, workdir: Path
) -> dict[str, Any]:
    """Measure one flavor's registration and load-to-first-prediction against its floor.

    Each repetition uses a fresh registry home under ``workdir``, removed afterwards.

    Returns:
        ``description``, ``floor``, ``artifact_bytes``, and the summaries ``register_s``,
        ``load_predict_s`` and ``floor_load_predict_s`` (seconds), and ``load_ratio``
        (the median per-repetition ratio of Ferryman's load-to-first-prediction to the
        floor's).
    """
    row = X.iloc[:1]
    register_runs: list[float] = []
    load_runs: list[float] = []
    floor_runs: list[float] = []
    size = 0
    for index in range(config.warmup + config.repeat):
        home = workdir / f"{case.flavor}-{index}"
        with Registry.from_settings(_settings(home)) as registry:
            seconds, info = timed(
                partial(
                    registry.register,
                    case.model,
                    name=f"bench-{case.flavor}",
                    X=X,
                    y=y,
                    trusted=case.trusted,
                )
            )
            stored = stored_path(registry, info, home, case.floor_suffix)
            durations = interleave(
                {
                    "ferryman": partial(_load_and_predict, registry, info.ref, row),
                    "floor": partial(case.floor, stored, info.flavor_meta),
                },
                rounds=1,
                first_round=index,
            )
        shutil.rmtree(home)
        if index < config.warmup:
            continue
        size = info.artifact_size
        register_runs.append(seconds)
        load_runs.extend(durations["ferryman"])
        floor_runs.extend(durations["floor"])
    return {
        "description": case.description,
        "floor": case.floor_label,
        "artifact_bytes": size,
        "register_s": summarize(register_runs).to_dict(),
        "load_predict_s": summarize(load_runs).to_dict(),
        "floor_load_predict_s": summarize(floor_runs).to_dict(),
        "load_ratio": median_ratio(load_runs, floor_runs),
    }


def bench_large(case: LargeCase, config: Config, workdir: Path) -> dict[str, Any]:
    """Measure ``Registry.load`` of a large model against its floor and its SHA-256.

    Returns:
        ``description``, ``floor``, ``artifact_bytes``, the summaries ``ferryman_load_s``,
        ``floor_load_s`` and ``sha256_s`` (seconds), ``ratio`` (the median per-round
        ratio of Ferryman's load to the floor's) and ``overhead_s`` (the median
        per-round difference, in seconds; noise can make it slightly negative).
    """
    home = workdir / f"large-{case.flavor}"
    with Registry.from_settings(_settings(home)) as registry:
        info = registry.register(case.model, name=f"bench-large-{case.flavor}", X=case.X, y=case.y)
        stored = stored_path(registry, info, home, case.floor_suffix)
        calls: dict[str, Callable[[], object]] = {
            "ferryman": partial(registry.load, info.ref),
            "floor": partial(case.floor, stored, info.flavor_meta),
            "sha256": partial(_sha256, stored),
        }
        if config.warmup:
            interleave(calls, rounds=config.warmup)
        durations = interleave(calls, rounds=config.rounds)
    shutil.rmtree(home)
    ferryman, floor = durations["ferryman"], durations["floor"]
    return {
        "description": case.description,
        "floor": case.floor_label,
        "artifact_bytes": info.artifact_size,
        "ferryman_load_s": summarize(ferryman).to_dict(),
        "floor_load_s": summarize(floor).to_dict(),
        "sha256_s": summarize(durations["sha256"]).to_dict(),
        "ratio": median_ratio(ferryman, floor),
        "overhead_s": statistics.median(f - b for f, b in zip(ferryman, floor, strict=True)),
    }


def stored_path(registry: Registry, info: VersionInfo, directory: Path, suffix: str) -> Path:
    """Return the local path of a version's stored artifact, for a floor to load.

    Artifacts are stored under their hash, without a file name suffix. Some loaders
    (``xgboost.Booster``) guess the format from the suffix, so with ``suffix`` the stored
    file is hard-linked as ``directory/artifact<suffix>``: the same file, under a name
    its framework recognises.
    """
    path = registry.artifacts.fetch(
        BlobRef(info.artifact_sha256, info.artifact_size), label=info.ref
    )
    if not suffix:
        return path
    link = directory / f"artifact{suffix}"
    os.link(path, link)
    return link


# -- report -----------------------------------------------------------------------------


def report_lines(document: Mapping[str, Any]) -> list[str]:
    """Render the results as Markdown: the machine, then one table per measurement."""
    config = document["config"]
    flavors = document["flavors"]
    large = document["large_models"]
    lines = [
        f"## Registry benchmark ({'smoke' if document['smoke'] else 'full'} run)",
        "",
        f"`{document['command']}` at {document['started_at']}",
        "",
        *machine_lines(document["machine"]),
        "",
        f"Register and load-to-first-prediction, median and p90 of {config['repeat']} "
        "repetitions (each in a fresh registry home):",
        "",
        *markdown_table(
            [
                "Flavor",
                "Artifact",
                "Register (median)",
                "Register (p90)",
                "Load + predict (median)",
                "Load + predict (p90)",
                "Floor (median)",
                "Ferryman / floor",
            ],
            [
                [
                    name,
                    format_bytes(result["artifact_bytes"]),
                    format_seconds(result["register_s"]["median"]),
                    format_seconds(result["register_s"]["p90"]),
                    format_seconds(result["load_predict_s"]["median"]),
                    format_seconds(result["load_predict_s"]["p90"]),
                    format_seconds(result["floor_load_predict_s"]["median"]),
                    f"{result['load_ratio']:.2f}",
                ]
                for name, result in flavors.items()
            ],
        ),
        "",
        "Floors: "
        + "; ".join(f"{name}: {result['floor']}" for name, result in flavors.items())
        + ".",
        "",
        f"Loading a large model, median of {config['rounds']} alternating rounds:",
        "",
        *markdown_table(
            [
                "Model",
                "Artifact",
                "Registry.load",
                "Floor",
                "SHA-256 of the file",
                "Ferryman - floor",
                "Ferryman / floor",
            ],
            [
                [
                    f"{name}: {result['description']}",
                    format_bytes(result["artifact_bytes"]),
                    format_seconds(result["ferryman_load_s"]["median"]),
                    format_seconds(result["floor_load_s"]["median"]),
                    format_seconds(result["sha256_s"]["median"]),
                    format_seconds(result["overhead_s"])
                    if result["overhead_s"] >= 0
                    else "-" + format_seconds(-result["overhead_s"]),
                    f"{result['ratio']:.2f}",
                ]
                for name, result in large.items()
            ],
        ),
        "",
        "Floors: "
        + "; ".join(f"{name}: {result['floor']}" for name, result in large.items())
        + ".",
    ]
    return lines


# -- entry point ------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the report and write the JSON; return the exit status."""
    args = _parser().parse_args(argv)
    base = SMOKE if args.smoke else FULL
    config = Config(
        repeat=args.repeat or base.repeat,
        warmup=base.warmup,
        rounds=args.rounds or base.rounds,
        large_bytes=base.large_bytes,
    )
    if args.output_dir is not None:
        output_dir: Path = args.output_dir
    elif args.smoke:
        output_dir = Path(tempfile.mkdtemp(prefix="ferryman-bench-smoke-"))
    else:
        output_dir = RESULTS_DIR
    started_at = datetime.now(UTC).replace(microsecond=0).isoformat()
    start = time.perf_counter()
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    X: pd.DataFrame = data.data
    y: np.ndarray = data.target.to_numpy()
    with tempfile.TemporaryDirectory(prefix="ferryman-bench-registry-") as tmp:
        workdir = Path(tmp)
        flavors: dict[str, Any] = {}
        cases = flavor_cases(X, y, workdir)
        # Everything imported and built so far lives as long as the run: freezing it
        # keeps the collections before each timed call (and any during it) short.
        gc.collect()
        gc.freeze()
        for case in cases:
            _progress(
                start, f"{case.flavor}: {config.warmup + config.repeat} registrations and loads"
            )
            flavors[case.flavor] = bench_flavor(case, X, y, config, workdir)
        large: dict[str, Any] = {}
        for large_case in large_cases(config.large_bytes):
            _progress(start, f"large {large_case.flavor}: {large_case.description}")
            large[large_case.flavor] = bench_large(large_case, config, workdir)
    document = {
        "benchmark": "registry",
        "smoke": args.smoke,
        "command": shlex.join(sys.orig_argv),
        "started_at": started_at,
        "duration_s": time.perf_counter() - start,
        "config": {"repeat": config.repeat, "warmup": config.warmup, "rounds": config.rounds},
        "machine": machine_info(),
        "flavors": flavors,
        "large_models": large,
    }
    path = output_dir / RESULT_FILE
    write_json(path, document)
    print("\n".join(report_lines(document)))
    print(f"\nResults written to {path}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Measure registering and loading models against each framework's floor."
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny models and one repetition, to check that the benchmark runs (< 30 s); "
        "results go to a temporary directory unless --output-dir is given",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        help=f"directory for {RESULT_FILE} (default: bench/results)",
    )
    parser.add_argument(
        "--repeat",
        type=positive_int,
        help=f"repetitions per flavor (default: {FULL.repeat}; smoke: {SMOKE.repeat})",
    )
    parser.add_argument(
        "--rounds",
        type=positive_int,
        help=f"rounds per large model (default: {FULL.rounds}; smoke: {SMOKE.rounds})",
    )
    return parser


def _settings(home: Path) -> Settings:
    # Explicit values win over FERRYMAN_* variables and a ferryman.toml in the working
    # directory, neither of which may point a benchmark at a real registry.
    return Settings(
        home=home, database_url=None, artifact_uri=None, user="bench", migrate_on_start=True
    )


def _load_and_predict(registry: Registry, ref: str, row: pd.DataFrame) -> object:
    return registry.load(ref).predict(row)


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as source:
        while size := source.readinto(buffer):
            digest.update(view[:size])
    return digest.hexdigest()


def _progress(start: float, message: str) -> None:
    print(f"[registry {time.perf_counter() - start:5.0f} s] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
