"""``ferryman drift``: drift reports between a reference and a current sample."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from ferryman.cli._app import JsonOption, console, emit, fail, open_registry, parse_pairs

if TYPE_CHECKING:
    from ferryman.drift import DriftReport

app = typer.Typer(
    help="Detect data, prediction and multivariate drift; write JSON or HTML reports.",
    no_args_is_help=True,
)

#: Exit code of ``report --fail-on-drift`` when the dataset drifted.
EXIT_DRIFT = 1


@app.command()
def report(
    model_ref: str | None = typer.Argument(
        None,
        metavar="[MODEL_REF]",
        help="Compare with this version's stored reference profile: churn, churn/3 or "
        "churn@production. Omit it to compare two files with --reference.",
    ),
    reference: Path | None = typer.Option(
        None, "--reference", "-r", help="Reference data (Parquet or CSV), instead of MODEL_REF."
    ),
    current: Path | None = typer.Option(
        None, "--current", "-c", help="Current data (Parquet or CSV) to check."
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Write the report to this .html or .json file."
    ),
    prediction_column: list[str] | None = typer.Option(
        None,
        "--prediction-column",
        help="Column holding model outputs, compared as prediction drift (with --reference; "
        "a profile names its own), repeatable.",
    ),
    test: list[str] | None = typer.Option(
        None, "--test", help="COLUMN=METHOD to override the automatic test, repeatable."
    ),
    drift_share: float = typer.Option(
        0.5, "--drift-share", help="Share of drifted features from which the dataset drifts."
    ),
    fdr: float = typer.Option(0.05, "--fdr", help="False discovery rate across features."),
    min_rows: int = typer.Option(
        100, "--min-rows", help="Fewest usable values per feature and sample for a verdict."
    ),
    multivariate: bool = typer.Option(
        True,
        "--multivariate/--no-multivariate",
        help="Run the domain-classifier test (needs --reference; takes seconds).",
    ),
    fail_on_drift: bool = typer.Option(
        False, "--fail-on-drift", help=f"Exit with status {EXIT_DRIFT} when the dataset drifted."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Compare --current with MODEL_REF's stored profile or with --reference FILE.

    With --reference and --current it works on plain files, without a registry or
    server. Multivariate drift needs reference rows, so it runs only with --reference.
    """
    from ferryman.errors import FerrymanError

    if (model_ref is None) == (reference is None):
        fail("give either MODEL_REF (a registered version) or --reference FILE, not both")
    if current is None:
        fail("--current FILE is required (windows of captured traffic are not available yet)")
    if out is not None and out.suffix.lower() not in (".html", ".htm", ".json"):
        fail(f"--out {str(out)!r}: expected a .html or .json file")
    try:
        result = _build(
            model_ref,
            reference,
            current,
            prediction_columns=prediction_column or [],
            methods=parse_pairs(test, "test"),
            drift_share=drift_share,
            fdr=fdr,
            min_rows=min_rows,
            multivariate=multivariate,
        )
        written = None if out is None else result.write(out)
    except FerrymanError as exc:
        fail(str(exc))
    document = result.to_dict(distribution=False)
    if written is not None:
        document["output"] = str(written)
    emit(document, as_json, lambda: _render(result, written))
    if fail_on_drift and result.dataset_drift:
        raise typer.Exit(EXIT_DRIFT)


def _build(
    model_ref: str | None,
    reference: Path | None,
    current: Path,
    *,
    prediction_columns: list[str],
    methods: dict[str, str],
    drift_share: float,
    fdr: float,
    min_rows: int,
    multivariate: bool,
) -> DriftReport:
    from ferryman.drift import DataDrift, drift_report

    data = DataDrift(methods=methods or None, drift_share=drift_share, fdr=fdr, min_rows=min_rows)
    if model_ref is not None:
        with open_registry() as registry:
            info = registry.get_version(model_ref)
        if info.profile is None:
            fail(
                f"{info.ref} has no reference profile: register it with --data so its "
                "training data is profiled, or use --reference FILE"
            )
        return drift_report(
            info.profile,
            current,
            data=data,
            reference_name=f"{info.ref} (stored reference profile)",
            current_name=str(current),
        )
    if reference is None:
        fail("give either MODEL_REF (a registered version) or --reference FILE")
    return drift_report(
        reference,
        current,
        data=data,
        multivariate=multivariate,
        prediction_columns=prediction_columns,
        reference_name=str(reference),
        current_name=str(current),
    )


def _render(result: DriftReport, written: Path | None) -> None:
    data = result.data
    verdict = "[bold red]DRIFT[/]" if data.dataset_drift else "[bold green]no drift[/]"
    console.print(
        f"Dataset: {verdict} - {data.n_drifted} of {data.n_tested} tested features drifted "
        f"({data.drifted_share:.0%}; threshold {data.drift_share:.0%})"
    )
    table = Table("feature", "kind", "status", "test", "effect", "threshold", "q-value", "drift")
    for f in data.features:
        table.add_row(
            escape(f.name),
            f.kind or "",
            f.status.value,
            f.test or "",
            _fmt(f.effect_size),
            _fmt(f.threshold),
            _fmt(f.q_value),
            "[red]yes[/]" if f.drifted else "no",
        )
    console.print(table)
    section = result.multivariate
    if section.result is not None:
        r = section.result
        console.print(
            f"Multivariate: {'[red]drift[/]' if r.drifted else 'no drift'} "
            f"(domain classifier AUC {r.statistic:.3f}, threshold {r.threshold:.3f})"
        )
    else:
        console.print(f"Multivariate: {section.status} - {escape(section.message)}")
    predictions = result.predictions
    if predictions.result is not None:
        drifted = ", ".join(predictions.result.drifted_features) or "none"
        console.print(
            f"Prediction drift: {'[red]yes[/]' if predictions.drifted else 'no'} "
            f"(drifted outputs: {escape(drifted)})"
        )
    else:
        console.print(f"Prediction drift: {predictions.status} - {escape(predictions.message)}")
    if written is not None:
        console.print(f"Wrote {escape(str(written))}")


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"
