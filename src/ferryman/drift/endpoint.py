"""Drift of an endpoint's captured traffic against a reference, as one report.

:func:`endpoint_report` compares a window of captured traffic (see
:mod:`ferryman.drift.traffic`) with a reference, by default the served version's stored
profile (or another window, a DataFrame, a Parquet/CSV file), through
:func:`~ferryman.drift.drift_report`, so the JSON and HTML are the offline report's, plus
the window's description. An empty window gives ``insufficient-data`` verdicts. Columns
the endpoint's privacy policy hashes, drops or redacts are never compared with raw
reference values; they are reported as such.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ferryman._report_files import write_report
from ferryman.drift._sources import ReferenceSource, load_reference
from ferryman.drift._summaries import NumericSummary, kind_of
from ferryman.drift.base import FeatureKind, Status
from ferryman.drift.concept import ConceptDrift, ConceptSection, concept_section
from ferryman.drift.dataset import DataDrift, DataDriftResult, FeatureDrift
from ferryman.drift.multivariate import DomainClassifierDrift
from ferryman.drift.report import DriftReport, MultivariateSection, PredictionSection, drift_report
from ferryman.drift.traffic import (
    _DIGEST,
    DEFAULT_WINDOW,
    MAX_WINDOW_ROWS,
    CapturedWindow,
    TrafficWindow,
    WindowInfo,
    read_window,
)
from ferryman.errors import InvalidInputError
from ferryman.signature import CategoricalProfile, ReferenceProfile

if TYPE_CHECKING:
    from ferryman.capture import LogStore, PrivacyPolicy

_PROBABILITY = re.compile(r"^probability\[(?P<label>.*)\]$", re.DOTALL)
_PROTECTED_MESSAGES = {
    "hash": "Hashed by the endpoint's privacy policy: the log keeps keyed digests (or, "
    "without a secret key, nothing), which cannot be compared with the reference's values.",
    "drop": "Dropped by the endpoint's privacy policy: the log does not keep this column.",
    "redact": "Redacted by the endpoint's privacy policy: the log keeps the text with emails, "
    "phone numbers, card numbers and addresses replaced, which cannot be compared with the "
    "reference's raw text.",
    "hash (detected)": "The log holds keyed digests (64 hex characters) for this column, as a "
    "'hash' privacy policy writes them; they cannot be compared with the reference's values.",
}


@dataclass(frozen=True)
class EndpointDriftReport:
    """A drift report over an endpoint's captured traffic.

    Attributes:
        endpoint: The endpoint.
        report: The report, as the offline path makes it.
        window: The current window.
        reference_window: The reference window, when the reference is captured traffic.
        protected: Columns the privacy policy keeps from comparison with raw reference
            values: column -> ``hash``, ``drop``, ``redact`` or ``hash (detected)``.
        min_rows: The fewest usable values per sample for a verdict.
        concept: Concept drift from the window's feedback, when asked for.
    """

    endpoint: str
    report: DriftReport
    window: WindowInfo
    reference_window: WindowInfo | None = None
    protected: Mapping[str, str] = field(default_factory=dict)
    min_rows: int = 100
    concept: ConceptSection | None = None

    @property
    def dataset_drift(self) -> bool:
        """The dataset-level decision."""
        return self.report.dataset_drift

    @property
    def status(self) -> str:
        """``insufficient-data`` when a window has fewer than ``min_rows`` records, else ``ok``."""
        windows = (self.window, self.reference_window)
        short = any(w is not None and w.rows < self.min_rows for w in windows)
        return "insufficient-data" if short else "ok"

    def to_dict(self, *, distribution: bool = True) -> dict[str, object]:
        """The offline report's JSON plus ``endpoint``, ``status``, ``window``,
        ``reference_window``, ``protected_columns`` and ``concept`` (``None`` when not
        asked for)."""
        data = self.report.to_dict(distribution=distribution)
        data["endpoint"] = self.endpoint
        data["status"] = self.status
        data["window"] = self.window.to_dict()
        data["reference_window"] = (
            None if self.reference_window is None else self.reference_window.to_dict()
        )
        data["protected_columns"] = dict(self.protected)
        data["concept"] = None if self.concept is None else self.concept.to_dict()
        return data

    def to_json(self, *, indent: int | None = 2) -> str:
        """Return the report as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def to_html(self) -> str:
        """Return the standalone HTML page (needs Plotly; see :meth:`DriftReport.to_html`),
        with a concept drift section when there is one."""
        from ferryman.drift._html import render_concept, render_html

        extra = () if self.concept is None else (render_concept(self.concept),)
        return render_html(self.report, extra=extra)

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_html` (``.html``, ``.htm``) or :meth:`to_json` (``.json``) to ``path``.

        Raises:
            InvalidInputError, MissingDependencyError: As :meth:`DriftReport.write`.
        """
        return write_report(path, to_html=self.to_html, to_json=self.to_json)


def endpoint_report(
    store: LogStore,
    endpoint: str,
    *,
    reference: ReferenceSource | TrafficWindow,
    window: TrafficWindow | timedelta | int = DEFAULT_WINDOW,
    now: datetime | None = None,
    privacy: PrivacyPolicy | Mapping[str, str] | None = None,
    data: DataDrift | None = None,
    multivariate: DomainClassifierDrift | bool = False,
    max_rows: int = MAX_WINDOW_ROWS,
    reference_name: str = "",
    concept: ConceptDrift | bool = False,
    reference_performance: Mapping[str, float] | None = None,
) -> EndpointDriftReport:
    """Compare an endpoint's window of captured traffic with a reference.

    Args:
        store: The prediction log.
        endpoint: The endpoint.
        reference: The served version's stored profile (a
            :class:`~ferryman.signature.ReferenceProfile` or its dict), another window
            of the endpoint's traffic (e.g. the previous day), a DataFrame, or a
            Parquet/CSV file. A DataFrame or file may hold the outputs under the names
            :func:`read_window` gives them (``prediction``, ``probability[<class>]``).
        window: The current window (see :func:`read_window`).
        now: What the windows are relative to (timezone-aware); default the store's clock.
        privacy: The endpoint's privacy policy. Against a profile, DataFrame or file, its
            hashed, dropped and redacted columns are reported, not compared (digests
            are recognised even without it); two windows compare what the log holds.
        data: The data drift configuration; ``DataDrift()`` by default.
        multivariate: The multivariate test (needs a DataFrame, file or window reference).
        max_rows: Most records read per window.
        reference_name: How the report names the reference.
        concept: Also check concept drift on the window's predictions joined with their
            feedback (:func:`~ferryman.drift.concept.concept_section`): ``True`` for
            ``ConceptDrift()``, or a configuration.
        reference_performance: The served version's metrics (``accuracy``, ``mae``,
            ``rmse``), the reference of the realised performance.

    Returns:
        The report.

    Raises:
        InvalidInputError: A bad endpoint name, window, time, unreadable reference or
            ``concept`` setting.
        QueryError: The log could not be read in the store's query timeout.
    """
    if not isinstance(concept, bool | ConceptDrift):
        raise InvalidInputError(f"concept must be True, False or a ConceptDrift, got {concept!r}.")
    moment = store.now() if now is None else now
    current = read_window(store, endpoint, window, now=moment, max_rows=max_rows)
    template = data or DataDrift()
    policy = _policy(privacy)
    reference_window: CapturedWindow | None = None
    if isinstance(reference, TrafficWindow):
        reference_window = read_window(store, endpoint, reference, now=moment, max_rows=max_rows)
        loaded: ReferenceProfile | pd.DataFrame = reference_window.frame
        name = reference_name or reference_window.info.describe()
        # Both sides hold what the log keeps (equal values hash alike): compared as stored.
        excluded: dict[str, str] = {}
        known = {*current.features, *reference_window.features}
        protected = {
            column: policy.action(column).value
            for column in sorted(policy.protected)
            if column in known or policy.action(column).value == "drop"
        }
    else:
        loaded = load_reference(reference)
        name = reference_name or (
            str(reference) if isinstance(reference, str | os.PathLike) else ""
        )
        excluded = protected = _protected(policy, current, loaded)
    frame = current.frame.drop(columns=[c for c in excluded if c in current.frame.columns])
    frame, outputs = _match_outputs(frame, current.outputs, loaded)
    empty = next(
        (w.info for w in (current, reference_window) if w is not None and w.info.rows == 0), None
    )
    if empty is not None:
        report = _insufficient(template, loaded, current, empty, outputs, name)
    else:
        report = drift_report(
            loaded,
            frame,
            data=template,
            multivariate=multivariate if isinstance(loaded, pd.DataFrame) else False,
            prediction_columns=() if isinstance(loaded, ReferenceProfile) else outputs,
            reference_name=name,
            current_name=current.info.describe(),
        )
    if excluded:
        report = _mark_protected(report, excluded)
    section = None
    if concept is not False:
        section = concept_section(
            store,
            current,
            config=concept if isinstance(concept, ConceptDrift) else None,
            reference_performance=reference_performance,
            max_rows=max_rows,
        )
    return EndpointDriftReport(
        endpoint=endpoint,
        report=report,
        window=current.info,
        reference_window=None if reference_window is None else reference_window.info,
        protected=protected,
        min_rows=template.min_rows,
        concept=section,
    )


# -- internals -----------------------------------------------------------------------------


def _policy(privacy: PrivacyPolicy | Mapping[str, str] | None) -> PrivacyPolicy:
    from ferryman.capture import PrivacyPolicy

    if isinstance(privacy, PrivacyPolicy):
        return privacy
    return PrivacyPolicy.from_mapping(privacy or {})


def _holds_digests(values: Iterable[object]) -> bool:
    return any(isinstance(value, str) and _DIGEST.match(value) for value in values)


def _protected(
    policy: PrivacyPolicy, current: CapturedWindow, reference: ReferenceProfile | pd.DataFrame
) -> dict[str, str]:
    """Columns kept from comparison with raw reference values, and why."""
    if isinstance(reference, ReferenceProfile):
        profiles = {profile.name: profile for profile in reference.features}
        names: set[str] = set(profiles)
    else:
        names = {str(column) for column in reference.columns}
    found: dict[str, str] = {}
    for name in sorted(policy.protected & (names | set(current.features))):
        found[name] = policy.action(name).value
    for name in sorted(current.digests & (names - set(found))):
        if isinstance(reference, ReferenceProfile):
            profile = profiles[name]
            stored = isinstance(profile, CategoricalProfile) and _holds_digests(profile.categories)
        else:
            stored = _holds_digests(reference[name].dropna().head(1000).tolist())
        if not stored:
            found[name] = "hash (detected)"
    return found


def _label_key(name: str) -> str:
    """``probability[True]`` and ``probability[true]``, ``[1.0]`` and ``[1]`` alike."""
    match = _PROBABILITY.match(name)
    if match is None:
        return name
    label = match["label"].lower()
    try:
        number = float(label)
    except ValueError:
        return f"probability[{label}]"
    return f"probability[{int(number) if number.is_integer() else label}]"


def _match_outputs(
    frame: pd.DataFrame, outputs: Sequence[str], reference: ReferenceProfile | pd.DataFrame
) -> tuple[pd.DataFrame, list[str]]:
    """Rename the window's outputs as the reference names them; drop the others."""
    if isinstance(reference, ReferenceProfile):
        known = [profile.name for profile in reference.predictions]
    else:
        known = [str(column) for column in reference.columns]
    by_key = {_label_key(name): name for name in known}
    renamed: dict[str, str] = {}
    dropped: list[str] = []
    for name in outputs:
        target = name if name in known else by_key.get(_label_key(name))
        if target is None or (target != name and target in frame.columns):
            dropped.append(name)
        elif target != name:
            renamed[name] = target
    shaped = frame.drop(columns=dropped).rename(columns=renamed)
    kept = [renamed.get(name, name) for name in outputs if name not in dropped]
    return shaped, kept


def _insufficient(
    template: DataDrift,
    reference: ReferenceProfile | pd.DataFrame,
    current: CapturedWindow,
    empty: WindowInfo,
    outputs: Sequence[str],
    reference_name: str,
) -> DriftReport:
    """The report when a window is empty: every feature ``insufficient-data``, none tested."""
    message = (
        f"The window holds no captured records ({empty.describe()}); at least "
        f"{template.min_rows} are needed for a verdict."
    )
    features: list[FeatureDrift] = []
    n_reference = 0
    if isinstance(reference, ReferenceProfile) or len(reference):
        fitted = _fitted_features(template, reference, outputs)
        n_reference = fitted.n_reference_
        for name, summary in fitted.reference_.items():
            kind: FeatureKind = "numeric" if isinstance(summary, NumericSummary) else "categorical"
            features.append(
                FeatureDrift(
                    name=name,
                    kind=kind,
                    status=Status.INSUFFICIENT_DATA,
                    n_reference=summary.n,
                    message=message,
                )
            )
    else:
        for name in current.features:
            series = current.frame[name]
            features.append(
                FeatureDrift(
                    name=name,
                    kind="numeric" if kind_of(series) == "numeric" else "categorical",
                    status=Status.INSUFFICIENT_DATA,
                    n_current=int(series.notna().sum()),
                    message=message,
                )
            )
    data = DataDriftResult(
        dataset_drift=False,
        drifted_share=0.0,
        drift_share=template.drift_share,
        fdr=template.fdr,
        n_drifted=0,
        n_tested=0,
        n_reference=n_reference,
        n_current=current.info.rows,
        features=tuple(features),
    )
    return DriftReport(
        data=data,
        multivariate=MultivariateSection(status="insufficient-data", message=message),
        predictions=PredictionSection(status="insufficient-data", message=message),
        reference=reference_name or _describe_reference(reference),
        current=current.info.describe(),
    )


def _fitted_features(
    template: DataDrift, reference: ReferenceProfile | pd.DataFrame, outputs: Sequence[str]
) -> DataDrift:
    parameters = template.parameters()
    parameters["section"] = "features"
    if isinstance(reference, pd.DataFrame):
        parameters["columns"] = [c for c in reference.columns if c not in outputs]
    return DataDrift(**parameters).fit(reference)  # type: ignore[arg-type]


def _describe_reference(reference: ReferenceProfile | pd.DataFrame) -> str:
    if isinstance(reference, ReferenceProfile):
        return f"reference profile ({reference.row_count} rows)"
    return f"DataFrame ({len(reference)} rows x {len(reference.columns)} columns)"


def _mark_protected(report: DriftReport, protected: Mapping[str, str]) -> DriftReport:
    features = tuple(
        replace(feature, status=Status.MISSING_COLUMN, message=_PROTECTED_MESSAGES[action])
        if (action := protected.get(feature.name)) is not None
        else feature
        for feature in report.data.features
    )
    return replace(report, data=replace(report.data, features=features))


__all__ = ["EndpointDriftReport", "endpoint_report"]
