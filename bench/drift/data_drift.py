"""Data drift benchmark: Ferryman against Evidently's data drift preset and a SciPy loop.

Reference and current samples of N rows x 25 columns (20 numeric, 5 categorical with up
to 1,000 categories; ``tests/drift/synthetic.py``), ten columns with an injected drift,
fifteen stationary (one with a practically irrelevant +0.01 sd shift). For each size
every contender runs in its own fresh process on the same Parquet files, so each peak
memory figure is that contender's alone:

- ``ferryman-profile``: the reference as a stored profile (the JSON a registered version
  keeps), the current sample as a DataFrame: ``DataDrift().fit(profile).compare(current)``.
- ``ferryman-data``: both as DataFrames (the reference is summarised in the timed part).
- ``scipy-loop``: per column, ``scipy.stats.ks_2samp`` (numeric) or
  ``chi2_contingency`` (categorical), drift at p < 0.05: the usual hand-written check.
- ``evidently``: Evidently 0.7.23's ``DataDriftPreset`` with its defaults, in its own
  virtual environment (``.venv-peers/evidently``, created if missing), never a
  Ferryman dependency.

Times exclude reading the files and are the median of ``--repeats`` runs in one
process (the first run, which pays for lazy imports and caches, is shown beside it);
Evidently runs once. Peak memory is the process's peak resident set size
(``ru_maxrss``), data included, and the RSS after loading is reported beside it.
Recall is the share of the ten injected columns called drifted; false positives count
the fifteen stationary columns called drifted. Results go to
``bench/results/drift.json``; Markdown tables are printed.

Usage::

    python bench/drift/data_drift.py              # 10k, 100k, 1M rows (~6 min on 2 cores)
    python bench/drift/data_drift.py --smoke      # 2k rows, no Evidently, seconds
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from _report import machine_info, machine_lines, markdown_table, write_json  # noqa: E402
from tests.drift.synthetic import INJECTED, STATIONARY, make_drift_dataset  # noqa: E402

RESULTS_DIR = ROOT / "bench" / "results"
RESULT_FILE = "drift.json"
PEER_VENV = ROOT / ".venv-peers" / "evidently"
PEER_PACKAGES = ("evidently==0.7.23", "pandas<3", "pyarrow")
CONTENDERS = ("ferryman-profile", "ferryman-data", "scipy-loop", "evidently")

EVIDENTLY_WORKER = r"""
import json, resource, sys, time
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset

folder = sys.argv[1]
reference = pd.read_parquet(f"{folder}/reference.parquet")
current = pd.read_parquet(f"{folder}/current.parquet")
loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
start = time.perf_counter()
snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
document = snapshot.dict()
seconds = time.perf_counter() - start
drifted = []
for metric in document["metrics"]:
    config = metric["config"]
    if config.get("type", "").endswith("ValueDrift"):
        value, threshold = metric["value"], config["threshold"]
        p_value = "p_value" in config["method"]
        if (value < threshold) if p_value else (value >= threshold):
            drifted.append(config["column"])
print(json.dumps({"runs": [seconds], "drifted": drifted, "loaded_rss": loaded,
                  "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def _worker(name: str, folder: Path, repeats: int) -> dict[str, Any]:
    """Run one contender on the files in ``folder``; called in a fresh process."""
    import pandas as pd

    current = pd.read_parquet(folder / "current.parquet")
    if name == "ferryman-profile":
        from ferryman.drift import DataDrift
        from ferryman.signature import ReferenceProfile

        profile = ReferenceProfile.from_dict(json.loads((folder / "profile.json").read_text()))

        def run() -> list[str]:
            return list(DataDrift().fit(profile).compare(current).drifted_features)

    elif name == "ferryman-data":
        from ferryman.drift import DataDrift

        reference = pd.read_parquet(folder / "reference.parquet")

        def run() -> list[str]:
            return list(DataDrift().fit(reference).compare(current).drifted_features)

    elif name == "scipy-loop":
        reference = pd.read_parquet(folder / "reference.parquet")

        def run() -> list[str]:
            return _scipy_loop(reference, current)

    else:
        raise SystemExit(f"unknown contender {name!r}")
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    runs, drifted = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        drifted = run()
        runs.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"runs": runs, "drifted": drifted, "loaded_rss": loaded, "peak_rss": peak}


def _scipy_loop(reference: Any, current: Any) -> list[str]:
    import numpy as np
    import pandas as pd
    from scipy import stats

    drifted = []
    for name in reference.columns:
        ref, cur = reference[name], current[name]
        if pd.api.types.is_numeric_dtype(ref.dtype):
            p = stats.ks_2samp(ref.dropna(), cur.dropna()).pvalue
        else:
            counts = pd.concat([ref.value_counts(), cur.value_counts()], axis=1).fillna(0)
            p = stats.chi2_contingency(np.asarray(counts.T), correction=False).pvalue
        if p < 0.05:
            drifted.append(str(name))
    return drifted


def _ensure_peer_venv() -> Path:
    python = PEER_VENV / "bin" / "python"
    if not python.is_file():
        print(f"==> creating {PEER_VENV} with {' '.join(PEER_PACKAGES)}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER_PACKAGES], check=True)
    return python


def _run_contender(name: str, folder: Path, repeats: int) -> dict[str, Any]:
    if name == "evidently":
        command = [str(_ensure_peer_venv()), "-c", EVIDENTLY_WORKER, str(folder)]
    else:
        command = [
            sys.executable,
            __file__,
            "--worker",
            name,
            "--data",
            str(folder),
            "--repeats",
            str(repeats),
        ]
    load_before = os.getloadavg()[0]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    drifted = set(result["drifted"])
    result["seconds"] = statistics.median(result["runs"])
    result["load_average_before"] = load_before  # other work on the machine, for context
    result["recall"] = len(drifted & set(INJECTED)) / len(INJECTED)
    result["detected"] = sorted(drifted & set(INJECTED))
    result["missed"] = sorted(set(INJECTED) - drifted)
    result["false_positives"] = sorted(drifted & set(STATIONARY))
    return result


def _prepare(rows: int, folder: Path) -> None:
    from ferryman.signature import build_profile

    data = make_drift_dataset(rows, seed=0)
    data.reference.to_parquet(folder / "reference.parquet")
    data.current.to_parquet(folder / "current.parquet")
    profile = build_profile(data.reference)
    (folder / "profile.json").write_text(json.dumps(profile.to_dict()))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its tables; return 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="2k rows, no Evidently")
    parser.add_argument("--sizes", type=int, nargs="+", help="row counts to measure")
    parser.add_argument("--skip-evidently", action="store_true", help="leave the peer out")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per contender")
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--worker", choices=CONTENDERS[:-1], help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(args.worker, args.data, args.repeats)))
        return 0
    sizes = args.sizes or ([2000] if args.smoke else [10_000, 100_000, 1_000_000])
    contenders = [
        c for c in CONTENDERS if not (c == "evidently" and (args.smoke or args.skip_evidently))
    ]
    repeats = 1 if args.smoke else args.repeats
    results: dict[str, Any] = {
        "machine": machine_info(),
        "date": datetime.now(UTC).isoformat(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "columns": {"injected": INJECTED, "stationary": list(STATIONARY)},
        "sizes": {},
    }
    for rows in sizes:
        with tempfile.TemporaryDirectory(prefix="drift-bench-") as tmp:
            folder = Path(tmp)
            _prepare(rows, folder)
            print(f"==> {rows:,} rows x 25 columns", flush=True)
            by_name = {}
            for name in contenders:
                by_name[name] = _run_contender(name, folder, repeats)
                print(f"    {name}: {_brief(by_name[name])}", flush=True)
            results["sizes"][str(rows)] = by_name
    _ratios(results)
    write_json(args.output_dir / RESULT_FILE, results)
    print("\n".join(_tables(results)))
    return 0


def _brief(result: dict[str, Any]) -> str:
    if "error" in result:
        return f"error: {result['error']}"
    return (
        f"{result['seconds']:.2f} s, peak {result['peak_rss'] / 1e9:.2f} GB, recall "
        f"{result['recall']:.0%}, false positives {len(result['false_positives'])}"
    )


def _ratios(results: dict[str, Any]) -> None:
    for by_name in results["sizes"].values():
        base = by_name.get("ferryman-profile", {})
        for result in by_name.values():
            if "seconds" in result and "seconds" in base:
                result["time_vs_ferryman_profile"] = result["seconds"] / base["seconds"]


def _tables(results: dict[str, Any]) -> list[str]:
    lines = ["", "## Data drift: 25 columns (10 injected drifts, 15 stationary)", ""]
    lines += machine_lines(results["machine"])
    rows = []
    for size, by_name in results["sizes"].items():
        for name, r in by_name.items():
            if "error" in r:
                rows.append([f"{int(size):,}", name, "error", "", "", "", "", "", r["error"][:60]])
                continue
            rows.append(
                [
                    f"{int(size):,}",
                    name,
                    f"{r['seconds']:.2f} s",
                    f"{r['runs'][0]:.2f} s",
                    f"{r.get('time_vs_ferryman_profile', 1.0):.1f}x",
                    f"{r['peak_rss'] / 1e9:.2f} GB",
                    f"{len(r['detected'])}/10",
                    str(len(r["false_positives"])),
                    ", ".join(r["missed"] + [f"+{c}" for c in r["false_positives"]]) or "-",
                ]
            )
    headers = [
        "rows",
        "contender",
        "time (median)",
        "first run",
        "vs profile",
        "peak RSS",
        "recall",
        "false pos.",
        "missed / +false",
    ]
    return [*lines, "", *markdown_table(headers, rows)]


if __name__ == "__main__":
    raise SystemExit(main())
