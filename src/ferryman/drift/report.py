"""Drift reports: data, multivariate and prediction drift in one JSON or HTML document.

:func:`drift_report` runs every section that the inputs allow and records why a
section could not run (``status`` and ``message``) instead of failing. The JSON form
(:meth:`DriftReport.to_dict`) is the contract::

    {"dataset_drift": false, "drifted_share": 0.1, "drift_share": 0.5, "fdr": 0.05,
     "features": [{"name", "kind", "test", "statistic", "p_value", "q_value",
                   "effect_size", "threshold", "drifted", "status", ...}, ...],
     "multivariate": {"status", "message", "method", "statistic", "p_value",
                      "effect_size", "threshold", "drifted", ...},
     "prediction_drift": {"status", "message", "drifted", "features": [...]},
     "reference": "...", "current": "...", "created_at": "...", "ferryman_version": "..."}

The HTML form is one standalone file (Plotly's JavaScript embedded, so it works
offline): a summary table and, per feature, both distributions overlaid with the test,
statistic, effect size and decision.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from ferryman._report_files import write_report
from ferryman.drift._sources import CurrentSource, ReferenceSource, load_current, load_reference
from ferryman.drift.base import DriftResult
from ferryman.drift.dataset import DataDrift, DataDriftResult
from ferryman.drift.multivariate import DomainClassifierDrift
from ferryman.errors import InvalidInputError
from ferryman.signature import ReferenceProfile


@dataclass(frozen=True)
class Section:
    """An optional part of a report: its outcome, or why it did not run.

    Attributes:
        status: ``"ok"``, ``"unavailable"`` (the inputs do not allow it),
            ``"insufficient-data"`` or ``"skipped"`` (not asked for).
        message: Why the section did not run, or ``""``.
    """

    status: str
    message: str = ""


@dataclass(frozen=True)
class MultivariateSection(Section):
    """The multivariate (domain classifier) section.

    Attributes:
        result: The test's result when it ran.
    """

    result: DriftResult | None = None

    def to_dict(self) -> dict[str, object]:
        """Return JSON-safe values."""
        data: dict[str, object] = {"status": self.status, "message": self.message}
        data.update(
            self.result.to_dict()
            if self.result is not None
            else {"method": DomainClassifierDrift.name, "drifted": False}
        )
        return data


@dataclass(frozen=True)
class PredictionSection(Section):
    """The prediction drift section: the model's outputs, reference against current.

    Attributes:
        result: Per-output verdicts when it ran; the section drifts when any output does.
    """

    result: DataDriftResult | None = None

    @property
    def drifted(self) -> bool:
        """Whether any model output drifted."""
        return self.result is not None and self.result.n_drifted > 0

    def to_dict(self, *, distribution: bool = True) -> dict[str, object]:
        """Return JSON-safe values."""
        features = (
            []
            if self.result is None
            else [f.to_dict(distribution=distribution) for f in self.result.features]
        )
        return {
            "status": self.status,
            "message": self.message,
            "drifted": self.drifted,
            "features": features,
        }


@dataclass(frozen=True)
class DriftReport:
    """Everything a drift check found, ready to print, save or plot.

    Attributes:
        data: Per-feature verdicts and the dataset decision.
        multivariate: The domain-classifier section.
        predictions: The prediction drift section.
        reference: A description of the reference (file name, model version, ...).
        current: A description of the current sample.
        created_at: When the report was made (UTC).
    """

    data: DataDriftResult
    multivariate: MultivariateSection
    predictions: PredictionSection
    reference: str = ""
    current: str = ""
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def dataset_drift(self) -> bool:
        """The dataset-level decision."""
        return self.data.dataset_drift

    def to_dict(self, *, distribution: bool = True) -> dict[str, object]:
        """Return the report as JSON-safe values (see the module docstring)."""
        from ferryman import __version__

        data = self.data.to_dict(distribution=distribution)
        data["multivariate"] = self.multivariate.to_dict()
        data["prediction_drift"] = self.predictions.to_dict(distribution=distribution)
        data["reference"] = self.reference
        data["current"] = self.current
        data["created_at"] = self.created_at.isoformat()
        data["ferryman_version"] = __version__
        return data

    def to_json(self, *, indent: int | None = 2) -> str:
        """Return the report as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def to_html(self) -> str:
        """Return the report as a standalone HTML page (needs Plotly).

        Raises:
            MissingDependencyError: Plotly is not installed.
        """
        from ferryman.drift._html import render_html

        return render_html(self)

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the report as HTML (``.html``, ``.htm``) or JSON (``.json``).

        Raises:
            InvalidInputError: Another file extension.
            MissingDependencyError: HTML asked and Plotly is not installed.
        """
        return write_report(path, to_html=self.to_html, to_json=self.to_json)


def drift_report(
    reference: ReferenceSource,
    current: CurrentSource,
    *,
    data: DataDrift | None = None,
    multivariate: DomainClassifierDrift | bool = True,
    prediction_columns: Sequence[str] = (),
    reference_name: str = "",
    current_name: str = "",
) -> DriftReport:
    """Compare a current sample with a reference: data, multivariate and prediction drift.

    Args:
        reference: A stored profile (or its dict), a DataFrame, or a Parquet/CSV file.
        current: A DataFrame (for example a window of captured traffic) or a file.
        data: The data drift configuration; ``DataDrift()`` by default. Its
            ``columns`` and ``section`` are set by this function.
        multivariate: The multivariate test's configuration, ``True`` for
            ``DomainClassifierDrift()``, or ``False`` to skip it (it trains a classifier,
            which takes seconds). It needs reference rows, so it is unavailable with a
            profile.
        prediction_columns: Columns holding the model's outputs when the reference is
            data (with a profile, the profile's prediction names are used: for example
            ``prediction`` and ``probability[<class>]``). They are left out of the data
            drift and compared in the prediction drift section.
        reference_name: How the report names the reference.
        current_name: How the report names the current sample.

    Returns:
        The report.

    Raises:
        InvalidInputError: A source cannot be read.
    """
    ref = load_reference(reference)
    cur = load_current(current)
    template = data or DataDrift()
    outputs = list(prediction_columns)
    if isinstance(ref, ReferenceProfile):
        features = _configured(template, section="features")
        data_result = features.fit(ref).compare(cur)
        multivariate_section = MultivariateSection(
            status="unavailable",
            message="The reference is a stored profile, which keeps no rows; the "
            "multivariate test needs reference data (a DataFrame or a file).",
        )
        prediction_section = _profile_predictions(template, ref, cur)
    else:
        feature_columns = [c for c in ref.columns if c not in outputs]
        data_result = (
            _configured(template, section="features", columns=feature_columns)
            .fit(ref[feature_columns])
            .compare(cur.drop(columns=[c for c in outputs if c in cur.columns]))
        )
        multivariate_section = (
            MultivariateSection(
                status="skipped", message="The multivariate test was not asked for."
            )
            if multivariate is False
            else _multivariate(
                multivariate
                if isinstance(multivariate, DomainClassifierDrift)
                else DomainClassifierDrift(),
                ref[feature_columns],
                cur,
            )
        )
        prediction_section = _frame_predictions(template, ref, cur, outputs)
    return DriftReport(
        data=data_result,
        multivariate=multivariate_section,
        predictions=prediction_section,
        reference=reference_name or _describe(reference),
        current=current_name or _describe(current),
    )


def _configured(template: DataDrift, **changes: object) -> DataDrift:
    parameters = template.parameters()
    parameters.update(changes)
    return DataDrift(**parameters)  # type: ignore[arg-type]


def _multivariate(
    test: DomainClassifierDrift, reference: pd.DataFrame, current: pd.DataFrame
) -> MultivariateSection:
    try:
        result = (
            test.clone()
            .fit(reference)
            .compare(current[[c for c in reference.columns if c in current.columns]])
        )
    except InvalidInputError as exc:
        return MultivariateSection(status="insufficient-data", message=str(exc))
    return MultivariateSection(status="ok", result=result)


def _profile_predictions(
    template: DataDrift, profile: ReferenceProfile, current: pd.DataFrame
) -> PredictionSection:
    names = [p.name for p in profile.predictions]
    if not names:
        return PredictionSection(
            status="unavailable",
            message="The reference profile has no training predictions.",
        )
    present = [name for name in names if name in current.columns]
    if not present:
        return PredictionSection(
            status="unavailable",
            message=f"The current sample has none of the prediction columns {', '.join(names)}.",
        )
    drift = _configured(template, section="predictions", columns=present, methods=None)
    return PredictionSection(status="ok", result=drift.fit(profile).compare(current[present]))


def _frame_predictions(
    template: DataDrift, reference: pd.DataFrame, current: pd.DataFrame, outputs: list[str]
) -> PredictionSection:
    if not outputs:
        return PredictionSection(
            status="unavailable",
            message="No prediction columns were named (prediction_columns / --prediction-column).",
        )
    missing = [c for c in outputs if c not in reference.columns or c not in current.columns]
    if missing:
        return PredictionSection(
            status="unavailable",
            message=f"Prediction columns missing from the reference or current sample: "
            f"{', '.join(missing)}.",
        )
    drift = _configured(template, section="features", columns=outputs, methods=None)
    return PredictionSection(
        status="ok", result=drift.fit(reference[outputs]).compare(current[outputs])
    )


def _describe(source: object) -> str:
    if isinstance(source, str | os.PathLike):
        return str(source)
    if isinstance(source, pd.DataFrame):
        return f"DataFrame ({len(source)} rows x {len(source.columns)} columns)"
    if isinstance(source, ReferenceProfile):
        return f"reference profile ({source.row_count} rows)"
    return type(source).__name__
