"""Lineage: data fingerprints, git revisions and the environment of a registration."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ferryman.errors import InvalidInputError
from ferryman.registry.lineage import (
    CodeRevision,
    capture_lineage,
    code_revision,
    environment,
    fingerprint_data,
)

# Bounded values, so that ``x + 1 != x`` always holds for the cell-change property.
matrices = hnp.arrays(
    dtype=st.sampled_from([np.dtype("float64"), np.dtype("int64")]),
    shape=hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12),
    elements=st.integers(-(10**6), 10**6),
)


def _frame(values: np.ndarray[Any, Any]) -> pd.DataFrame:
    return pd.DataFrame(values, columns=[f"c{i}" for i in range(values.shape[1])])


# -- fingerprint_data ---------------------------------------------------------------------


@given(values=matrices)
def test_fingerprint_is_the_same_for_equal_data_built_separately(
    values: np.ndarray[Any, Any],
) -> None:
    assert fingerprint_data(_frame(values)) == fingerprint_data(_frame(values.copy()))


@given(values=matrices, data=st.data())
def test_fingerprint_changes_when_any_cell_changes(
    values: np.ndarray[Any, Any], data: st.DataObject
) -> None:
    row = data.draw(st.integers(0, values.shape[0] - 1), label="row")
    column = data.draw(st.integers(0, values.shape[1] - 1), label="column")
    changed = values.copy()
    changed[row, column] += 1
    assert fingerprint_data(_frame(values)) != fingerprint_data(_frame(changed))


@given(values=matrices)
def test_fingerprint_changes_when_rows_are_reordered(values: np.ndarray[Any, Any]) -> None:
    reordered = values[::-1]
    assume(not np.array_equal(values, reordered))
    assert fingerprint_data(_frame(values)) != fingerprint_data(_frame(reordered))


@given(values=matrices)
def test_fingerprint_changes_when_a_column_is_renamed(values: np.ndarray[Any, Any]) -> None:
    frame = _frame(values)
    renamed = frame.rename(columns={"c0": "renamed"})
    assert fingerprint_data(frame).sha256 != fingerprint_data(renamed).sha256


@given(values=matrices)
def test_numpy_fingerprint_is_stable_and_sensitive_to_every_cell(
    values: np.ndarray[Any, Any],
) -> None:
    changed = values.copy()
    changed.flat[-1] += 1
    fingerprints = [fingerprint_data(values), fingerprint_data(values.copy())]
    assert fingerprints[0] == fingerprints[1] != fingerprint_data(changed)


def test_fingerprint_changes_when_a_dtype_changes() -> None:
    frame = pd.DataFrame({"a": [1, 2, 3]})
    narrowed = frame.astype({"a": "int32"})
    assert fingerprint_data(frame).sha256 != fingerprint_data(narrowed).sha256


def test_fingerprint_ignores_the_dataframe_index() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    reindexed = frame.set_axis([10, 20])
    assert fingerprint_data(frame) == fingerprint_data(reindexed)


def test_fingerprint_records_rows_columns_and_dtypes() -> None:
    frame = pd.DataFrame({"age": [31, 42, 57], "plan": ["a", "b", "a"]})
    fingerprint = fingerprint_data(frame)
    assert (fingerprint.rows, fingerprint.columns, fingerprint.dtypes) == (
        3,
        ("age", "plan"),
        ("int64", str(frame["plan"].dtype)),
    )


def test_dataframe_and_its_numpy_values_are_different_fingerprints() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    from_frame, from_array = fingerprint_data(frame), fingerprint_data(frame.to_numpy())
    assert (from_array.rows, from_array.columns, from_array.sha256 != from_frame.sha256) == (
        2,
        (),
        True,
    )


def test_pyarrow_table_matches_the_dataframe_it_converts_to() -> None:
    frame = pd.DataFrame(
        {
            "amount": [1.5, None, 3.25],
            "plan": ["basic", "pro", None],
            "since": pd.to_datetime(["2024-01-01", "2024-02-01", "NaT"]),
        }
    )
    table = pa.Table.from_pandas(frame, preserve_index=False)
    assert fingerprint_data(table) == fingerprint_data(table.to_pandas())


def test_non_contiguous_array_matches_its_contiguous_copy() -> None:
    array = np.arange(24, dtype=np.float64).reshape(4, 6)[:, ::2]
    assert fingerprint_data(array) == fingerprint_data(np.ascontiguousarray(array))


def test_array_fingerprint_depends_on_shape() -> None:
    array = np.arange(12)
    assert fingerprint_data(array.reshape(3, 4)) != fingerprint_data(array.reshape(4, 3))


def test_object_array_is_hashed_by_value_not_by_pointer() -> None:
    first = np.array(["".join(["lo", "ng"]), "text"], dtype=object)
    second = np.array(["long", "".join(["te", "xt"])], dtype=object)
    assert fingerprint_data(first) == fingerprint_data(second)


def test_target_is_part_of_the_fingerprint() -> None:
    frame = pd.DataFrame({"a": [1, 2, 3]})
    hashes = {
        fingerprint_data(frame).sha256,
        fingerprint_data(frame, pd.Series([0, 1, 0], name="y")).sha256,
        fingerprint_data(frame, pd.Series([0, 1, 1], name="y")).sha256,
    }
    assert len(hashes) == 3


def test_fingerprint_rejects_an_unsupported_type() -> None:
    with pytest.raises(InvalidInputError, match=re.escape("of type builtins.dict. Supported:")):
        fingerprint_data({"a": [1, 2]})


def test_fingerprint_rejects_unhashable_cells() -> None:
    with pytest.raises(InvalidInputError, match="values pandas cannot hash"):
        fingerprint_data(pd.DataFrame({"a": [[1], [2]]}))


def test_fingerprint_rejects_target_of_another_length() -> None:
    with pytest.raises(InvalidInputError, match="X has 3 rows, y has 2"):
        fingerprint_data(np.zeros((3, 2)), np.zeros(2))


# -- code_revision ------------------------------------------------------------------------


@pytest.fixture
def hermetic_git(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep the developer's git configuration, and any repository above tmp_path, out."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))


def _git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path, hermetic_git: None) -> Path:
    """A git work tree with one commit of ``train.py``."""
    path = tmp_path / "repo"
    path.mkdir()
    _git(path, "init", "--quiet")
    (path / "train.py").write_text("print('train')\n")
    _git(path, "add", "train.py")
    _git(path, "commit", "--quiet", "-m", "initial")
    return path


def test_code_revision_reports_the_head_commit_of_a_clean_tree(repo: Path) -> None:
    assert code_revision(repo) == CodeRevision(commit=_git(repo, "rev-parse", "HEAD"), dirty=False)


def test_code_revision_is_dirty_after_a_tracked_file_changes(repo: Path) -> None:
    (repo / "train.py").write_text("print('changed')\n")
    assert code_revision(repo) == CodeRevision(commit=_git(repo, "rev-parse", "HEAD"), dirty=True)


def test_code_revision_is_dirty_after_a_change_is_staged(repo: Path) -> None:
    (repo / "train.py").write_text("print('staged')\n")
    _git(repo, "add", "train.py")
    revision = code_revision(repo)
    assert revision is not None and revision.dirty is True


def test_code_revision_ignores_untracked_files(repo: Path) -> None:
    (repo / "data.csv").write_text("a,b\n1,2\n")
    revision = code_revision(repo)
    assert revision is not None and revision.dirty is False


def test_code_revision_works_from_a_file_inside_the_tree(repo: Path) -> None:
    assert code_revision(repo / "train.py") == code_revision(repo)


def test_code_revision_defaults_to_the_current_directory(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo)
    assert code_revision() == code_revision(repo)


def test_code_revision_is_none_outside_a_repository(tmp_path: Path, hermetic_git: None) -> None:
    assert code_revision(tmp_path) is None


def test_code_revision_is_none_in_a_repository_without_commits(
    tmp_path: Path, hermetic_git: None
) -> None:
    _git(tmp_path, "init", "--quiet")
    assert code_revision(tmp_path) is None


def test_code_revision_is_none_without_git(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert code_revision(repo) is None


def test_code_revision_is_none_for_a_missing_directory(tmp_path: Path) -> None:
    assert code_revision(tmp_path / "does-not-exist") is None


# -- environment and capture_lineage --------------------------------------------------------


def test_environment_reports_python_platform_and_installed_packages() -> None:
    env = environment()
    expected = {"python", "python_implementation", "platform", "ferryman", "numpy", "pandas"}
    assert expected <= env.keys() and all(isinstance(v, str) for v in env.values())


def test_environment_imports_none_of_the_packages_it_reports() -> None:
    # The module is loaded from its file, so that the imports of ferryman.registry's
    # __init__ (which needs pandas for other reasons) do not mask what environment() does.
    code = (
        "import sys\n"
        "from importlib import util\n"
        "spec = util.spec_from_file_location('lineage', sys.argv[1])\n"
        "module = sys.modules['lineage'] = util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "module.environment()\n"
        "heavy = {'numpy', 'pandas', 'sklearn', 'pyarrow', 'skops', 'onnxruntime', 'xgboost',"
        " 'lightgbm', 'mlflow'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    module_path = Path(sys.modules[environment.__module__].__file__ or "")
    result = subprocess.run(
        [sys.executable, "-c", code, str(module_path)], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_capture_lineage_is_json_safe(repo: Path) -> None:
    lineage = capture_lineage(
        pd.DataFrame({"a": [1, 2]}), np.array([0, 1]), parent_version=2, cwd=repo
    )
    assert json.loads(json.dumps(lineage)) == lineage


def test_capture_lineage_combines_data_code_environment_and_parent(repo: Path) -> None:
    frame = pd.DataFrame({"a": [1, 2]})
    lineage = capture_lineage(frame, parent_version=2, cwd=repo)
    assert lineage == {
        "data": fingerprint_data(frame).to_dict(),
        "code": {"commit": _git(repo, "rev-parse", "HEAD"), "dirty": False},
        "environment": environment(),
        "parent_version": 2,
    }


def test_capture_lineage_without_data_or_repository_records_none(
    tmp_path: Path, hermetic_git: None
) -> None:
    lineage = capture_lineage(parent_version=None, cwd=tmp_path)
    assert (lineage["data"], lineage["code"], lineage["parent_version"]) == (None, None, None)


def test_capture_lineage_rejects_a_target_without_features() -> None:
    with pytest.raises(InvalidInputError, match="y was given without X"):
        capture_lineage(None, np.array([0, 1]), parent_version=None)
