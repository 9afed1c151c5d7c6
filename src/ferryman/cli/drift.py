"""``ferryman drift``: drift reports of files, of version profiles and of endpoint traffic."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from ferryman.cli._app import (
    JsonOption,
    console,
    emit,
    fail,
    open_registry,
    parse_pairs,
    settings,
)

if TYPE_CHECKING:
    from ferryman.drift import DataDrift, DriftReport
    from ferryman.drift.concept import ConceptSection
    from ferryman.drift.endpoint import EndpointDriftReport
    from ferryman.registry import Registry, VersionInfo

app = typer.Typer(
    help="Detect data, prediction and multivariate drift; write JSON or HTML reports.",
    no_args_is_help=True,
)

#: Exit code of ``report --fail-on-drift`` when the dataset drifted.
EXIT_DRIFT = 1
#: The window of an endpoint's captured traffic that ``report ENDPOINT`` checks by default.
REPORT_WINDOW = "24h"


@app.command()
def report(
    target: str | None = typer.Argument(
        None,
        metavar="[ENDPOINT|MODEL_REF]",
        help="An endpoint, to check its captured traffic (--window) against the profile of "
        "the version it serves; or, with --current FILE, a version whose stored reference "
        "profile --current is compared with: churn, churn/3 or churn@production. Omit it "
        "to compare two files with --reference and --current.",
    ),
    reference: Path | None = typer.Option(
        None,
        "--reference",
        "-r",
        help="Reference data (Parquet or CSV), instead of a stored profile.",
    ),
    current: Path | None = typer.Option(
        None, "--current", "-c", help="Current data (Parquet or CSV) to check."
    ),
    window: str | None = typer.Option(
        None,
        "--window",
        "-w",
        help="With an ENDPOINT: its traffic over this span (90s, 15m, 24h, 7d) or its last "
        f"N records (5000); default {REPORT_WINDOW}.",
    ),
    version: str | None = typer.Option(
        None, "--version", help="With an ENDPOINT: only records of this version, name/N."
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
        100,
        "--min-rows",
        help="Fewest usable values per feature and sample for a verdict (with an ENDPOINT, "
        "also the fewest labelled rows for concept drift).",
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
    """Check an ENDPOINT's captured traffic, or --current against MODEL_REF's stored
    profile or --reference FILE.

    With --reference and --current it works on plain files, without a registry or
    server. With an ENDPOINT (and no --current) it reads the endpoint's primary
    predictions with status 200 over --window from the prediction log and compares them
    with the served version's profile, or with --reference FILE. Multivariate drift needs
    reference rows, so it runs only with --reference.
    """
    from ferryman.errors import FerrymanError

    if out is not None and out.suffix.lower() not in (".html", ".htm", ".json"):
        fail(f"--out {str(out)!r}: expected a .html or .json file")
    if current is not None or target is None:
        if (target is None) == (reference is None):
            fail("give either MODEL_REF (a registered version) or --reference FILE, not both")
        if current is None:
            fail(
                "--current FILE is required with --reference (or name an ENDPOINT to check "
                "its captured traffic)"
            )
        for option, value in (("--window", window), ("--version", version)):
            if value is not None:
                fail(f"{option} applies to an ENDPOINT's captured traffic, not to --current FILE")
    elif prediction_column:
        fail(
            "--prediction-column applies to --current FILE; an endpoint's outputs are named "
            "prediction and probability[<class>] (name them so in a --reference file)"
        )
    options = _Options(
        prediction_columns=prediction_column or [],
        methods=parse_pairs(test, "test"),
        drift_share=drift_share,
        fdr=fdr,
        min_rows=min_rows,
        multivariate=multivariate,
    )
    try:
        result: DriftReport | EndpointDriftReport = (
            _endpoint(target, reference, window or REPORT_WINDOW, version, options)
            if current is None and target is not None
            else _build(target, reference, current, options)
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


@dataclass(frozen=True)
class _Options:
    prediction_columns: list[str]
    methods: dict[str, str]
    drift_share: float
    fdr: float
    min_rows: int
    multivariate: bool

    def data(self) -> DataDrift:
        from ferryman.drift import DataDrift

        return DataDrift(
            methods=self.methods or None,
            drift_share=self.drift_share,
            fdr=self.fdr,
            min_rows=self.min_rows,
        )


def _build(
    model_ref: str | None, reference: Path | None, current: Path | None, options: _Options
) -> DriftReport:
    from ferryman.drift import drift_report

    if current is None:
        fail("--current FILE is required")
    if model_ref is not None:
        with open_registry() as registry:
            info = _version(registry, model_ref)
        if info.profile is None:
            fail(
                f"{info.ref} has no reference profile: register it with --data so its "
                "training data is profiled, or use --reference FILE"
            )
        return drift_report(
            info.profile,
            current,
            data=options.data(),
            reference_name=f"{info.ref} (stored reference profile)",
            current_name=str(current),
        )
    if reference is None:
        fail("give either MODEL_REF (a registered version) or --reference FILE")
    return drift_report(
        reference,
        current,
        data=options.data(),
        multivariate=options.multivariate,
        prediction_columns=options.prediction_columns,
        reference_name=str(reference),
        current_name=str(current),
    )


def _version(registry: Registry, model_ref: str) -> VersionInfo:
    """The version MODEL_REF names; a name that is no model but an endpoint means the
    version the endpoint serves."""
    from ferryman.errors import ModelNotFoundError
    from ferryman.serving.endpoints import EndpointService

    try:
        return registry.get_version(model_ref)
    except ModelNotFoundError:
        endpoint = EndpointService(database=registry.database, user=registry.user).find(model_ref)
        if endpoint is None:
            raise
        return registry.get_version(endpoint.model)


def _endpoint(
    name: str, reference: Path | None, window: str, version: str | None, options: _Options
) -> EndpointDriftReport:
    from ferryman.capture import LogStore
    from ferryman.drift.concept import ConceptDrift
    from ferryman.drift.endpoint import endpoint_report
    from ferryman.drift.traffic import TrafficWindow
    from ferryman.serving.endpoints import EndpointService
    from ferryman.signature import ReferenceProfile

    span = TrafficWindow.parse(window, version=version)
    if "/" in name or "@" in name:
        fail(
            f"{name!r} is a model reference: give --current FILE to compare a file with its "
            "stored profile, or name an ENDPOINT to check its captured traffic"
        )
    with open_registry() as registry:
        endpoint = EndpointService(database=registry.database, user=registry.user).find(name)
        if endpoint is None:
            fail(
                f"no endpoint named {name!r} (list them with: ferryman endpoints list); to "
                "compare a file with a model version's profile, give --current FILE"
            )
        baseline: Path | ReferenceProfile
        info = registry.get_version(endpoint.model)
        if reference is not None:
            baseline, described = reference, str(reference)
        else:
            if info.profile is None:
                fail(
                    f"{info.ref}, which endpoint {name!r} serves, has no reference profile: "
                    "register it with --data so its training data is profiled, or use "
                    "--reference FILE"
                )
            baseline = ReferenceProfile.from_dict(info.profile)
            described = f"{info.ref} (stored reference profile)"
    return endpoint_report(
        LogStore.from_settings(settings()),
        name,
        reference=baseline,
        window=span,
        privacy=endpoint.privacy,
        data=options.data(),
        multivariate=options.multivariate and reference is not None,
        reference_name=described,
        concept=ConceptDrift(min_rows=options.min_rows),
        reference_performance=info.metrics,
    )


def _render(result: DriftReport | EndpointDriftReport, written: Path | None) -> None:
    from ferryman.drift.endpoint import EndpointDriftReport

    concept = None
    if isinstance(result, EndpointDriftReport):
        window = result.window
        console.print(f"Window: {escape(window.describe())}")
        if window.versions:
            console.print(f"Versions: {escape(', '.join(window.versions))}")
        for column, action in result.protected.items():
            console.print(f"Not compared (privacy policy: {action}): {escape(column)}")
        concept = result.concept
        result = result.report
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
    if concept is not None:
        _render_concept(concept)
    if written is not None:
        console.print(f"Wrote {escape(str(written))}")


def _render_concept(section: ConceptSection) -> None:
    verdict = "[bold red]DRIFT[/]" if section.drifted else "[bold green]no drift[/]"
    console.print(
        f"Concept drift: {verdict} - {section.labelled_rows:,} of {section.rows:,} records "
        f"labelled ({section.labelled_share:.0%}), status {section.status}"
        + (f" - {escape(section.message)}" if section.message else "")
    )
    performance = section.performance
    if performance is not None:
        reference = (
            "no reference performance"
            if performance.reference is None
            else f"reference {_fmt(performance.reference)}"
            + (" [red]degraded[/]" if performance.degraded else ", not degraded")
        )
        console.print(
            f"Realised {performance.metric}: {_fmt(performance.value)} "
            f"[{_fmt(performance.low)}, {_fmt(performance.high)}] on {performance.n:,} rows; "
            f"{reference}"
        )
    estimate = section.estimate
    if estimate is not None:
        if estimate.value is None:
            console.print(f"CBPE estimate: {estimate.status} - {escape(estimate.message)}")
        else:
            calibrated = "calibrated" if estimate.reliable else "[red]not calibrated[/]"
            console.print(
                f"CBPE estimated accuracy: {_fmt(estimate.value)} [{_fmt(estimate.low)}, "
                f"{_fmt(estimate.high)}] ({calibrated}: calibration error "
                f"{_fmt(estimate.calibration_error)} on {estimate.calibration_rows:,} rows)"
            )
    if section.detectors:
        table = Table("detector", "status", "drift", "first row", "first time", "detections")
        for d in section.detectors:
            table.add_row(
                d.name,
                d.status,
                "[red]yes[/]" if d.detected else "no",
                "" if d.first_index is None else str(d.first_index),
                "" if d.first_time is None else d.first_time.isoformat(),
                str(len(d.detections)),
            )
        console.print(table)


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"
