"""Deterministic zip archives: same files, same bytes; safe extraction."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from ferryman.errors import InvalidInputError, UntrustedArtifactError
from ferryman.flavors._archive import directory_entries, extract_zip, write_zip


def _tree(root: Path, mtime: int) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "b.txt").write_text("bee")
    (root / "a.txt").write_text("ay")
    (root / "sub" / "c.bin").write_bytes(bytes(range(256)) * 100)
    for path in (root / "a.txt", root / "b.txt", root / "sub" / "c.bin"):
        os.utime(path, (mtime, mtime))
    return root


def test_archive_of_same_files_is_byte_identical_whatever_the_timestamps(tmp_path: Path) -> None:
    first = _tree(tmp_path / "first", mtime=1_000_000_000)
    second = _tree(tmp_path / "second", mtime=1_700_000_000)

    write_zip(directory_entries(first), tmp_path / "first.zip")
    write_zip(directory_entries(second), tmp_path / "second.zip")

    assert (tmp_path / "first.zip").read_bytes() == (tmp_path / "second.zip").read_bytes()


def test_archive_entries_are_sorted_relative_posix_paths(tmp_path: Path) -> None:
    source = _tree(tmp_path / "source", mtime=1_000_000_000)

    write_zip(directory_entries(source), tmp_path / "out.zip")

    with zipfile.ZipFile(tmp_path / "out.zip") as archive:
        assert archive.namelist() == ["a.txt", "b.txt", "sub/c.bin"]


def test_archive_roundtrips_file_contents(tmp_path: Path) -> None:
    source = _tree(tmp_path / "source", mtime=1_000_000_000)
    write_zip(directory_entries(source), tmp_path / "out.zip")

    target = extract_zip(tmp_path / "out.zip", tmp_path / "unpacked")

    assert (target / "sub" / "c.bin").read_bytes() == (source / "sub" / "c.bin").read_bytes()


def test_archive_refuses_directory_with_symbolic_link(tmp_path: Path) -> None:
    source = _tree(tmp_path / "source", mtime=1_000_000_000)
    (source / "link.txt").symlink_to(tmp_path / "elsewhere.txt")

    with pytest.raises(InvalidInputError, match="symbolic link"):
        directory_entries(source)


def test_extract_refuses_entry_escaping_the_destination(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as archive:
        archive.writestr("../evil.txt", "gotcha")

    with pytest.raises(UntrustedArtifactError, match="points outside"):
        extract_zip(tmp_path / "evil.zip", tmp_path / "scratch" / "unpacked")
    assert not (tmp_path / "scratch" / "evil.txt").exists()


def test_extract_leaves_an_existing_destination_alone(tmp_path: Path) -> None:
    source = _tree(tmp_path / "source", mtime=1_000_000_000)
    write_zip(directory_entries(source), tmp_path / "out.zip")
    (tmp_path / "unpacked").mkdir()

    extract_zip(tmp_path / "out.zip", tmp_path / "unpacked")

    assert list((tmp_path / "unpacked").iterdir()) == []
