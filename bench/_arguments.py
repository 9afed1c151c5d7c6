"""Command-line argument types shared by the benchmark scripts."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """Parse a positive integer option, or tell argparse what was expected."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value
