"""Deterministic zip archives, for flavors whose model is more than one file.

The same files always give the same archive bytes, hence the same content hash in the
artifact store: entries are sorted by name and carry a fixed timestamp, fixed permissions
and a fixed compression level. Extraction refuses entries that would land outside the
target directory and publishes the result with one atomic rename.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from ferryman.errors import InvalidInputError, UntrustedArtifactError

#: The earliest timestamp a zip entry can hold; used for every entry.
_FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = 0o100644
_UNIX = 3
_COMPRESS_LEVEL = 6
_CHUNK_BYTES = 1 << 20


def directory_entries(source: Path) -> dict[str, Path]:
    """List the regular files under ``source`` by their POSIX path relative to it.

    Args:
        source: The directory to list.

    Returns:
        A mapping from archive entry name to file path. Empty directories are omitted.

    Raises:
        InvalidInputError: The directory contains a symbolic link or a special file;
            links could pull files from outside the model into the archive.
    """
    entries: dict[str, Path] = {}
    for current, dirnames, filenames in os.walk(source, followlinks=False):
        base = Path(current)
        for name in dirnames + filenames:
            path = base / name
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                raise InvalidInputError(
                    f"The model directory contains a symbolic link, {path}. "
                    "Replace it with the file it points to."
                )
            if name in filenames and not stat.S_ISREG(mode):
                raise InvalidInputError(
                    f"The model directory contains {path}, which is not a regular file."
                )
        for name in filenames:
            path = base / name
            entries[path.relative_to(source).as_posix()] = path
    return entries


def write_zip(entries: Mapping[str, Path], destination: Path) -> None:
    """Write ``entries`` into a new deterministic zip file at ``destination``.

    Args:
        entries: Archive entry names (POSIX relative paths) mapped to source files.
        destination: The zip file to create; it must not exist yet.
    """
    with zipfile.ZipFile(
        destination, mode="x", compression=zipfile.ZIP_DEFLATED, compresslevel=_COMPRESS_LEVEL
    ) as archive:
        for name in sorted(entries):
            source = entries[name]
            info = zipfile.ZipInfo(name, date_time=_FIXED_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = _UNIX
            info.external_attr = _FILE_MODE << 16
            # Declaring the size up front lets zipfile pick ZIP64 for large files itself.
            info.file_size = source.stat().st_size
            with source.open("rb") as reader, archive.open(info, mode="w") as writer:
                shutil.copyfileobj(reader, writer, _CHUNK_BYTES)


def extract_zip(archive_path: Path, destination: Path) -> Path:
    """Unpack ``archive_path`` into ``destination`` unless it is already there.

    The archive is extracted into a temporary sibling directory that is then renamed, so
    ``destination`` either does not exist or holds the complete content.

    Args:
        archive_path: The zip file.
        destination: The directory to create; if it exists, nothing is extracted.

    Returns:
        ``destination``.

    Raises:
        UntrustedArtifactError: An entry has an absolute path or climbs out of the
            destination with ``..``.
    """
    if destination.is_dir():
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=destination.parent))
    try:
        with zipfile.ZipFile(archive_path) as archive:
            for info in archive.infolist():
                target = staging.joinpath(*_safe_parts(info.filename))
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as reader, target.open("wb") as writer:
                    shutil.copyfileobj(reader, writer, _CHUNK_BYTES)
        try:
            staging.rename(destination)
        except OSError:
            # Another loader published the same content first; keep theirs.
            if not destination.is_dir():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return destination


def _safe_parts(name: str) -> tuple[str, ...]:
    """Split an entry name into path parts, refusing names that escape the target."""
    path = PurePosixPath(name)
    if path.is_absolute() or "\\" in name or any(part in ("", "..") for part in path.parts):
        raise UntrustedArtifactError(
            f"The archive entry {name!r} points outside the extraction directory; "
            "refusing to unpack this artifact."
        )
    return path.parts
