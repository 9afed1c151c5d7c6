"""Reporting for benchmarks: the machine's description, Markdown tables and JSON files.

Every result file and printed report starts with the machine it was measured on, because
figures from a 2-core shared runner and from a workstation are not comparable.
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

#: Packages whose versions are recorded, each with the distribution names it ships under
#: (the first one installed wins).
PACKAGES: dict[str, tuple[str, ...]] = {
    "ferryman": ("ferryman",),
    "lightgbm": ("lightgbm",),
    "mlflow": ("mlflow", "mlflow-skinny"),
    "numpy": ("numpy",),
    "onnxruntime": ("onnxruntime",),
    "pandas": ("pandas",),
    "scikit-learn": ("scikit-learn",),
    "skl2onnx": ("skl2onnx",),
    "skops": ("skops",),
    "sqlalchemy": ("sqlalchemy",),
    "xgboost": ("xgboost", "xgboost-cpu"),
}


def machine_info() -> dict[str, Any]:
    """Describe the machine and software the benchmark runs on.

    Returns:
        ``cpu`` (model name from ``/proc/cpuinfo``, or the platform's processor),
        ``logical_cores``, ``usable_cores`` (those this process may run on), ``memory_gb``,
        ``os``, ``python``, ``sqlite`` and ``packages`` (name to version, ``None`` when
        not installed).
    """
    return {
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "memory_gb": _memory_gb(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "packages": {name: _version(dists) for name, dists in PACKAGES.items()},
    }


def machine_lines(machine: Mapping[str, Any]) -> list[str]:
    """Render :func:`machine_info` as Markdown bullet lines."""
    packages = ", ".join(
        f"{name} {version}" for name, version in machine["packages"].items() if version
    )
    memory = machine["memory_gb"]
    return [
        f"- CPU: {machine['cpu']}, {machine['usable_cores']} usable of "
        f"{machine['logical_cores']} logical cores"
        + (f", {memory:.0f} GB RAM" if memory is not None else ""),
        f"- OS: {machine['os']}; Python {machine['python']}; SQLite {machine['sqlite']}",
        f"- Packages: {packages}",
    ]


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Render a Markdown table whose first column is left-aligned and others right-aligned.

    Raises:
        ValueError: A row does not have one cell per header.
    """
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"Expected {len(headers)} cells per row, got {len(row)}: {row!r}")
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.ljust(width) if index == 0 else cell.rjust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = [
        "-" * width if index == 0 else "-" * (width - 1) + ":" for index, width in enumerate(widths)
    ]
    return [line(headers), line(rule), *(line(row) for row in rows)]


def format_seconds(seconds: float) -> str:
    """Format a duration as milliseconds below 10 s (``"12.3 ms"``), else seconds."""
    if seconds >= 10:
        return f"{seconds:.1f} s"
    if seconds >= 0.1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds * 1000:.1f} ms"


def format_bytes(size: int) -> str:
    """Format a size in bytes with decimal units (``"50.0 MB"``, ``"21.3 kB"``)."""
    if size < 1000:
        return f"{size} B"
    if size < 1_000_000:
        return f"{size / 1000:.1f} kB"
    return f"{size / 1_000_000:.1f} MB"


def write_json(path: Path, document: Mapping[str, Any]) -> None:
    """Write ``document`` as indented JSON, creating the parent directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    return value.strip()
    except OSError:
        pass  # not Linux: fall back to what the platform module knows
    return platform.processor() or platform.machine() or "unknown"


def _memory_gb() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024**2
    except (OSError, ValueError, IndexError):
        pass  # not Linux, or an unexpected format: the memory is simply not reported
    return None


def _version(distributions: Sequence[str]) -> str | None:
    for distribution in distributions:
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return None


__all__ = [
    "PACKAGES",
    "format_bytes",
    "format_seconds",
    "machine_info",
    "machine_lines",
    "markdown_table",
    "write_json",
]
