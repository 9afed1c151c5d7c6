"""``ferryman demo``: the whole story on embedded defaults (SQLite and local files)."""

from __future__ import annotations

import time
from typing import Any

import typer
from rich.panel import Panel
from rich.table import Table

from ferryman.cli._app import console, settings

MODEL = "tumor-classifier"


def demo(
    reviewer: str = typer.Option("reviewer", help="Who approves the new version in the demo."),
) -> None:
    """Train two versions of a classifier, register, approve, alias, load and predict."""
    import pandas as pd
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ferryman.registry import Registry

    config = settings()
    console.print(
        Panel.fit(
            f"Ferryman demo — home [bold]{config.home.resolve()}[/], database "
            f"[bold]{config.resolved_database_url}[/]",
            title="ferryman demo",
        )
    )
    data = load_breast_cancer(as_frame=True)
    X, y = data.data, data.target
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=0, stratify=y
    )
    candidates: list[tuple[str, Any, dict[str, Any]]] = [
        (
            "logistic regression",
            make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
            {"C": 1.0, "scaler": "standard"},
        ),
        (
            "gradient boosting",
            HistGradientBoostingClassifier(max_iter=100, random_state=0),
            {"max_iter": 100},
        ),
    ]
    with Registry.from_settings(config) as registry:
        registered = []
        for label, estimator, params in candidates:
            started = time.perf_counter()
            estimator.fit(X_train, y_train)
            proba = estimator.predict_proba(X_test)[:, 1]
            metrics = {
                "accuracy": float(accuracy_score(y_test, proba > 0.5)),
                "roc_auc": float(roc_auc_score(y_test, proba)),
            }
            info = registry.register(
                estimator,
                name=MODEL,
                X=X_train,
                y=y_train,
                metrics=metrics,
                params=params,
                description=f"{label} on the Wisconsin breast cancer data set",
                tags={"dataset": "load_breast_cancer"},
            )
            registered.append(info)
            console.print(
                f"registered [bold]{info.ref}[/] ({label}, {info.flavor}) "
                f"accuracy={metrics['accuracy']:.3f} roc_auc={metrics['roc_auc']:.3f} "
                f"in {time.perf_counter() - started:.2f}s"
            )
        best = max(registered, key=lambda v: v.metrics["roc_auc"])
        review = registry.acting_as(reviewer)
        review.set_status(best.ref, "approved", comment="better ROC AUC on the hold-out set")
        console.print(f"[green]approved[/] {best.ref} as {reviewer!r} (not its author)")
        registry.set_alias(MODEL, "production", best.version)
        console.print(f"{MODEL}@production → version {best.version}")
        model = registry.load(f"{MODEL}@production")
        sample = X_test.head(5)
        prediction = model.predict_batch(sample)
        table = Table("row", "prediction", "P(benign)", "truth")
        assert prediction.probabilities is not None
        for i, (pred, proba_row, truth) in enumerate(
            zip(prediction.predictions, prediction.probabilities, y_test.head(5), strict=True)
        ):
            table.add_row(str(i), str(pred), f"{proba_row[-1]:.3f}", str(truth))
        console.print(f"loaded {model.ref} (artifact verified) and predicted:")
        console.print(table)
        bad = pd.DataFrame([{**sample.iloc[0].to_dict(), "mean radius": "large"}])
        try:
            model.predict(bad)
        except ValueError as exc:
            console.print(f"a malformed row is refused: [yellow]{exc}[/]")
        report = registry.verify_audit()
        console.print(
            f"audit log: {report.checked} entries, {'intact' if report.ok else 'TAMPERED'}"
        )
    console.print(
        "next: ferryman models list · ferryman models show "
        f"{MODEL}@production · ferryman audit list"
    )
