"""The ``ferryman models``, ``audit`` and ``db`` commands, run in process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import skops.io
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from ferryman.cli import main


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Any:
    monkeypatch.setenv("FERRYMAN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FERRYMAN_USER", "alice")

    def run(*args: str, user: str | None = None) -> tuple[int, str, str]:
        if user is not None:
            monkeypatch.setenv("FERRYMAN_USER", user)
        code = main(list(args))
        out, err = capsys.readouterr()
        monkeypatch.setenv("FERRYMAN_USER", "alice")
        return code, out, err

    return run


@pytest.fixture
def iris_files(tmp_path: Path) -> tuple[Path, Path]:
    data = load_iris(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    model = LogisticRegression(max_iter=500).fit(frame.drop(columns="target"), frame["target"])
    model_path = tmp_path / "iris.skops"
    skops.io.dump(model, model_path)
    data_path = tmp_path / "iris.parquet"
    frame.to_parquet(data_path)
    return model_path, data_path


def _register(cli: Any, files: tuple[Path, Path], *extra: str) -> dict[str, Any]:
    code, out, err = cli(
        "models",
        "register",
        "iris",
        "--model",
        str(files[0]),
        "--data",
        str(files[1]),
        "--target",
        "target",
        "--json",
        *extra,
    )
    assert code == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def test_register_from_files_prints_the_new_version(
    cli: Any, iris_files: tuple[Path, Path]
) -> None:
    info = _register(cli, iris_files, "--metric", "accuracy=0.97", "--tag", "team=bio")
    assert (info["ref"], info["flavor"], info["metrics"]) == (
        "iris/1",
        "sklearn",
        {"accuracy": 0.97},
    )
    assert [c["name"] for c in info["signature"]["columns"]][:2] == ["sepal_length", "sepal_width"]


def test_alias_show_and_history_answer_where_the_alias_pointed(
    cli: Any, iris_files: tuple[Path, Path]
) -> None:
    _register(cli, iris_files)
    _register(cli, iris_files)
    assert cli("models", "alias", "iris", "production", "1")[0] == 0
    first_move = json.loads(cli("models", "alias-history", "iris", "production", "--json")[1])
    assert cli("models", "alias", "iris", "production", "2")[0] == 0
    code, out, _ = cli("models", "show", "iris@production", "--at", first_move[0]["at"], "--json")
    assert (code, json.loads(out)["version"]) == (0, 1)
    history = json.loads(cli("models", "alias-history", "iris", "production", "--json")[1])
    assert [(e["previous_version"], e["version"]) for e in history] == [(None, 1), (1, 2)]


def test_versions_filters_by_metric_and_status(cli: Any, iris_files: tuple[Path, Path]) -> None:
    _register(cli, iris_files, "--metric", "auc=0.8")
    _register(cli, iris_files, "--metric", "auc=0.9")
    assert cli("models", "approve", "iris/2", user="bob")[0] == 0
    _code, out, _ = cli("models", "versions", "iris", "--metric", "auc>0.85", "--json")
    assert [v["version"] for v in json.loads(out)] == [2]
    _code, out, _ = cli("models", "versions", "iris", "--status", "approved", "--json")
    assert [v["version"] for v in json.loads(out)] == [2]


def test_predict_loads_and_predicts_on_a_file(
    cli: Any, iris_files: tuple[Path, Path], tmp_path: Path
) -> None:
    _register(cli, iris_files)
    rows = pd.read_parquet(iris_files[1]).drop(columns="target").head(4)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    code, out, err = cli(
        "models", "predict", "iris", "--input", str(tmp_path / "rows.csv"), "--json"
    )
    assert code == 0, err
    assert json.loads(out)["predictions"] == [0, 0, 0, 0]


def test_audit_list_and_verify(cli: Any, iris_files: tuple[Path, Path]) -> None:
    _register(cli, iris_files)
    code, out, _ = cli("audit", "list", "--json")
    assert [e["action"] for e in json.loads(out)] == ["model.create", "version.register"]
    code, out, _ = cli("audit", "verify")
    assert code == 0 and "intact" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("models", "show", "nope"), "No model named 'nope'"),
        (("models", "show", "bad ref!"), "Invalid model reference"),
        (("models", "register", "x", "--model", "missing.skops"), "does not exist"),
        (("models", "register", "x"), "give the model"),
        (("models", "alias", "x", "prod"), "give a VERSION"),
        (("models", "versions", "x", "--metric", "auc"), "Invalid metric condition"),
        (("models", "show", "x", "--at", "yesterday"), "invalid time"),
        (("models", "list", "--tag", "novalue"), "expected KEY=VALUE"),
    ],
    ids=[
        "unknown-model",
        "bad-ref",
        "missing-file",
        "no-model",
        "no-version",
        "bad-metric",
        "bad-time",
        "bad-tag",
    ],
)
def test_user_mistakes_exit_2_with_one_line(cli: Any, args: tuple[str, ...], message: str) -> None:
    code, _out, err = cli(*args)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_pickle_file_needs_trusted(cli: Any, tmp_path: Path) -> None:
    import joblib

    path = tmp_path / "model.joblib"
    joblib.dump(LogisticRegression(), path)
    code, _, err = cli("models", "register", "x", "--model", str(path))
    assert code == 2 and "--trusted" in err


def test_unreachable_database_exits_2(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERRYMAN_DATABASE_URL", "postgresql+psycopg://u@127.0.0.1:9/x")
    code, _, err = cli("models", "list")
    assert code == 2 and "Cannot reach the metadata store" in err


def test_db_upgrade_then_current(cli: Any) -> None:
    code, out, _ = cli("db", "upgrade", "--json")
    assert code == 0 and json.loads(out)["applied"] is True
    code, out, _ = cli("db", "current", "--json")
    current = json.loads(out)
    assert current["revision"] == current["head"]


def test_register_from_code_file(cli: Any, tmp_path: Path) -> None:
    code_file = tmp_path / "rules.py"
    code_file.write_text(
        "import numpy as np\n\n"
        "class Threshold:\n"
        "    def predict(self, frame):\n"
        "        return (np.asarray(frame)[:, 0] > 0.5).astype(int)\n"
    )
    data = tmp_path / "x.csv"
    pd.DataFrame({"score": [0.1, 0.9, 0.7]}).to_csv(data, index=False)
    code, out, err = cli(
        "models",
        "register",
        "rules",
        "--code",
        str(code_file),
        "--class",
        "Threshold",
        "--trusted",
        "--data",
        str(data),
        "--json",
    )
    assert code == 0, err
    assert json.loads(out)["flavor"] == "python"
    code, out, err = cli("models", "predict", "rules", "--input", str(data), "--json")
    assert json.loads(out)["predictions"] == [0, 1, 1]
