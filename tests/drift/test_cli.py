"""``ferryman drift report``: on plain files, on a registered version, and on bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import typer
from sklearn.linear_model import LogisticRegression

from ferryman.cli import drift as drift_cli
from tests.drift.conftest import dataset
from tests.drift.synthetic import INJECTED

Runner = Any


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Runner:
    """Run ``ferryman drift ...`` in process, as ``ferryman.cli.main`` does."""
    monkeypatch.setenv("FERRYMAN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FERRYMAN_USER", "alice")
    root = typer.Typer()
    root.add_typer(drift_cli.app, name="drift")

    def run(*args: str) -> tuple[int, str, str]:
        result = root(args=["drift", *args], prog_name="ferryman", standalone_mode=False)
        out, err = capsys.readouterr()
        return (result if isinstance(result, int) else 0), out, err

    return run


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    data = dataset(10_000)
    reference, current = tmp_path / "reference.parquet", tmp_path / "current.csv"
    data.reference.iloc[:2000].to_parquet(reference)
    data.current.iloc[:2000].to_csv(current, index=False)
    return reference, current


def test_report_on_two_files_needs_no_registry(cli: Runner, files: tuple[Path, Path]) -> None:
    code, out, err = cli(
        "report", "--reference", str(files[0]), "--current", str(files[1]), "--json"
    )
    assert code == 0, err
    document = json.loads(out)
    drifted = {f["name"] for f in document["features"] if f["drifted"]}
    assert drifted == set(INJECTED)
    assert document["multivariate"]["status"] == "ok"


@pytest.mark.parametrize("suffix", [".html", ".json"])
def test_report_writes_the_out_file(
    cli: Runner, files: tuple[Path, Path], tmp_path: Path, suffix: str
) -> None:
    target = tmp_path / f"report{suffix}"
    code, out, _ = cli(
        "report",
        "-r",
        str(files[0]),
        "-c",
        str(files[1]),
        "--out",
        str(target),
        "--no-multivariate",
    )
    assert code == 0 and target.is_file()
    assert f"Wrote {target}" in out.replace("\n", "")


def test_report_against_a_registered_versions_profile(cli: Runner, tmp_path: Path) -> None:
    from ferryman.config import Settings
    from ferryman.registry import Registry

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=2000), "b": rng.choice(["u", "v", "w"], 2000)})
    y = (X["a"] > 0).astype(int)
    model = LogisticRegression().fit(X[["a"]], y)
    with Registry.from_settings(Settings()) as registry:
        registry.register(model, name="churn", X=X[["a"]], y=y)
    current = tmp_path / "week.parquet"
    pd.DataFrame({"a": rng.normal(0.5, 1, 1000)}).to_parquet(current)
    code, out, err = cli("report", "churn/1", "--current", str(current), "--json")
    assert code == 0, err
    document = json.loads(out)
    assert [f["name"] for f in document["features"] if f["drifted"]] == ["a"]
    assert document["multivariate"]["status"] == "unavailable"


def test_fail_on_drift_exits_1_when_the_dataset_drifted(
    cli: Runner, files: tuple[Path, Path]
) -> None:
    args = (
        "report",
        "-r",
        str(files[0]),
        "-c",
        str(files[1]),
        "--fail-on-drift",
        "--no-multivariate",
    )
    assert cli(*args, "--drift-share", "0.3")[0] == 1
    assert cli(*args)[0] == 0  # 10 of 25 features: below the default 50 %


BAD_INPUT = [
    ("neither", (), "give either MODEL_REF"),
    ("both", ("churn", "--reference", "r.csv", "--current", "c.csv"), "not both"),
    ("no current", ("--reference", "r.csv"), "--current FILE is required"),
    ("missing file", ("--reference", "nowhere.csv", "--current", "c.csv"), "does not exist"),
    ("bad out", ("-r", "r.csv", "-c", "c.csv", "--out", "x.pdf"), "expected a .html or .json"),
    ("bad test", ("-r", "r.csv", "-c", "c.csv", "--test", "x=kss"), "Unknown drift method 'kss'"),
]


@pytest.mark.parametrize(
    ("args", "message"), [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT]
)
def test_bad_input_exits_2_with_one_line(
    cli: Runner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    pd.DataFrame({"x": [1.0, 2.0]}).to_csv("r.csv", index=False)
    pd.DataFrame({"x": [1.0, 2.0]}).to_csv("c.csv", index=False)
    code, _, err = cli("report", *args)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) <= 2  # one line, maybe wrapped


def test_an_unknown_model_exits_2(cli: Runner, files: tuple[Path, Path]) -> None:
    code, _, err = cli("report", "nosuchmodel", "--current", str(files[1]))
    assert code == 2 and "nosuchmodel" in err
