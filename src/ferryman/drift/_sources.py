"""Reading references and current samples: DataFrames, Parquet/CSV files, profiles."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from ferryman.errors import InvalidInputError
from ferryman.signature import ReferenceProfile

#: A reference: a stored profile (or its dict), a DataFrame, or a Parquet/CSV file.
ReferenceSource = ReferenceProfile | Mapping[str, object] | pd.DataFrame | str | os.PathLike[str]
#: A current sample: a DataFrame (for example a window of captured traffic) or a file.
CurrentSource = pd.DataFrame | str | os.PathLike[str]


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a Parquet (``.parquet``, ``.pq``) or CSV (``.csv``) file.

    Raises:
        InvalidInputError: The file is missing, of another type, or unreadable.
    """
    file = Path(path)
    if not file.is_file():
        raise InvalidInputError(f"Data file {str(file)!r} does not exist.")
    suffix = file.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(file)
        if suffix == ".csv":
            return pd.read_csv(file)
    except (ValueError, OSError) as exc:
        raise InvalidInputError(f"Cannot read {str(file)!r}: {exc}") from exc
    raise InvalidInputError(f"Unsupported data file {str(file)!r}: expected .parquet or .csv.")


def load_reference(source: ReferenceSource) -> ReferenceProfile | pd.DataFrame:
    """Return a reference as a profile or a DataFrame.

    Raises:
        InvalidInputError: A file cannot be read, or a dict is not a profile.
    """
    if isinstance(source, ReferenceProfile | pd.DataFrame):
        return source
    if isinstance(source, Mapping):
        return ReferenceProfile.from_dict(source)
    return read_table(source)


def load_current(source: CurrentSource) -> pd.DataFrame:
    """Return a current sample as a DataFrame.

    Raises:
        InvalidInputError: A file cannot be read, or ``source`` is not a table.
    """
    if isinstance(source, pd.DataFrame):
        return source
    if isinstance(source, str | os.PathLike):
        return read_table(source)
    raise InvalidInputError(
        "The current sample must be a DataFrame or a Parquet/CSV file; "
        f"got {type(source).__name__}."
    )
