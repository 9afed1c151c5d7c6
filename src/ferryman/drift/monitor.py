"""Drift over captured traffic: an endpoint's window of predictions, on demand and on a schedule.

A *window* (:class:`TrafficWindow`) is the last span of time, or the last N records, of an
endpoint's primary predictions answered with status 200, optionally of one model version
and ending some time before now (the previous day is ``TrafficWindow(span=1 day,
offset=1 day)``). :func:`read_window` reads one from the prediction log into the frame
:class:`~ferryman.drift.DataDrift` expects: one column per feature (the ``inputs`` struct)
and the model's outputs, ``prediction`` (``prediction[i]`` for several outputs) and
``probability[<class>]``, named as a version's reference profile names them.

:func:`endpoint_report` compares a window with a reference, by default the served
version's stored profile (or another window, a DataFrame, a Parquet/CSV file), through
:func:`~ferryman.drift.drift_report`, so the JSON and HTML are the offline report's, plus
the window's description. An empty window gives ``insufficient-data`` verdicts. Columns
the endpoint's privacy policy hashes, drops or redacts are never compared with raw
reference values; they are reported as such.

:class:`DriftMonitor` evaluates endpoints' rolling windows on a background thread and
publishes the results as Prometheus gauges (:class:`DriftMetrics`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ferryman.drift._sources import ReferenceSource, load_reference
from ferryman.drift._summaries import NumericSummary, kind_of
from ferryman.drift.base import FeatureKind, Status
from ferryman.drift.dataset import DataDrift, DataDriftResult, FeatureDrift
from ferryman.drift.multivariate import DomainClassifierDrift
from ferryman.drift.report import DriftReport, MultivariateSection, PredictionSection, drift_report
from ferryman.errors import InvalidInputError, MissingDependencyError
from ferryman.signature import CategoricalProfile, ReferenceProfile

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Gauge

    from ferryman.capture import LogStore, PrivacyPolicy

logger = logging.getLogger("ferryman.drift")

#: The rolling window a monitor evaluates, unless configured.
DEFAULT_WINDOW = timedelta(hours=1)
#: Seconds between a monitor's evaluations, unless configured.
DEFAULT_INTERVAL = 300.0
#: Most records read from one window; a larger window is sampled uniformly (by a hash
#: of request id and row, so the same records every time).
MAX_WINDOW_ROWS = 1_000_000

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
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
class TrafficWindow:
    """Which captured records form a sample: an endpoint's primary predictions with status 200.

    Give exactly one of ``span`` and ``rows``.

    Attributes:
        span: The records of the last ``span`` of time before the window's end.
        rows: The last ``rows`` records before the window's end.
        offset: How long before "now" the window ends (0: it ends now).
        version: Only records of this model version (``name/N``); ``None``: every version.

    Raises:
        InvalidInputError: Neither or both of ``span`` and ``rows``, a span or offset that
            is not a positive (offset: non-negative) duration, or ``rows`` below 1.

    >>> TrafficWindow.parse("24h").span, TrafficWindow.parse("5000").rows
    (datetime.timedelta(days=1), 5000)
    """

    span: timedelta | None = None
    rows: int | None = None
    offset: timedelta = timedelta(0)
    version: str | None = None

    def __post_init__(self) -> None:
        if (self.span is None) == (self.rows is None):
            raise InvalidInputError(
                "A traffic window needs exactly one of span (a duration) and rows (a number "
                f"of records); got span={self.span!r}, rows={self.rows!r}."
            )
        if self.span is not None and (
            not isinstance(self.span, timedelta) or self.span <= timedelta(0)
        ):
            raise InvalidInputError(f"span must be a positive timedelta, got {self.span!r}.")
        if self.rows is not None and (
            isinstance(self.rows, bool)
            or not isinstance(self.rows, int)
            or not 1 <= self.rows < 2**63
        ):
            raise InvalidInputError(
                f"rows must be an integer >= 1 (and below 2**63), got {self.rows!r}."
            )
        if not isinstance(self.offset, timedelta) or self.offset < timedelta(0):
            raise InvalidInputError(f"offset must be a timedelta >= 0, got {self.offset!r}.")

    @classmethod
    def parse(cls, text: str, *, version: str | None = None) -> TrafficWindow:
        """Read ``24h``, ``15m``, ``7d`` (a span of time) or ``5000`` (the last records).

        Raises:
            InvalidInputError: ``text`` is neither.
        """
        from ferryman.capture import parse_window

        stripped = text.strip() if isinstance(text, str) else ""
        if stripped.isdigit():
            return cls(rows=int(stripped), version=version)
        try:
            return cls(span=parse_window(stripped), version=version)
        except (InvalidInputError, OverflowError):
            raise InvalidInputError(
                f"Invalid window {text!r}: expected a duration such as 90s, 15m, 24h or 7d, "
                "or a number of records such as 5000."
            ) from None

    def describe(self) -> str:
        """The window in words, e.g. ``the last 24h`` or ``the last 5000 records of churn/3``.

        >>> TrafficWindow(span=timedelta(days=1), offset=timedelta(days=1)).describe()
        'the last 1d ending 1d before now'
        """
        what = f"the last {self.rows} records" if self.rows else f"the last {_duration(self.span)}"
        if self.offset:
            what += f" ending {_duration(self.offset)} before now"
        return what + (f" of {self.version}" if self.version else "")


@dataclass(frozen=True)
class WindowInfo:
    """Where a window of captured traffic lies and what it holds.

    Attributes:
        endpoint: The endpoint.
        window: What was asked for.
        since: The window's start (for a count window, its first record's time); ``None``
            for an empty count window.
        until: The window's end (exclusive).
        matched: Records in the window.
        rows: Records read (fewer than ``matched`` when the window was sampled).
        versions: The model versions that answered them.
    """

    endpoint: str
    window: TrafficWindow
    since: datetime | None
    until: datetime
    matched: int
    rows: int
    versions: tuple[str, ...] = ()

    @property
    def sampled(self) -> bool:
        """Whether only a uniform sample of the window's records was read."""
        return self.rows < self.matched

    def describe(self) -> str:
        """One line for reports: endpoint, records, sampling and time range."""
        version = f" of {self.window.version}" if self.window.version else ""
        sample = f", a uniform sample of {self.matched:,}" if self.sampled else ""
        since = "-" if self.since is None else f"{self.since:%Y-%m-%d %H:%M:%S}"
        return (
            f"{self.endpoint}: {self.rows:,} captured records (primary, status 200){version}"
            f"{sample}, {since} to {self.until:%Y-%m-%d %H:%M:%S} UTC"
        )

    def to_dict(self) -> dict[str, object]:
        """Return JSON-safe values (times in ISO 8601)."""
        span = self.window.span
        return {
            "endpoint": self.endpoint,
            "since": None if self.since is None else self.since.isoformat(),
            "until": self.until.isoformat(),
            "span_seconds": None if span is None else span.total_seconds(),
            "last_records": self.window.rows,
            "offset_seconds": self.window.offset.total_seconds(),
            "version": self.window.version,
            "matched": self.matched,
            "rows": self.rows,
            "sampled": self.sampled,
            "versions": list(self.versions),
        }


@dataclass(frozen=True, eq=False)
class CapturedWindow:
    """A window of captured traffic, shaped for the drift tests.

    Attributes:
        info: Where it lies and what it holds.
        frame: One column per feature, then one per model output.
        features: The feature columns, as captured (after the privacy policy).
        outputs: The output columns: ``prediction`` or ``prediction[i]``, then
            ``probability[<class>]`` per class.
        digests: Text features whose every value is a 64-hex-character digest, as a
            ``hash`` privacy policy stores them.
    """

    info: WindowInfo
    frame: pd.DataFrame = field(repr=False)
    features: tuple[str, ...]
    outputs: tuple[str, ...]
    digests: frozenset[str] = frozenset()


def read_window(
    store: LogStore,
    endpoint: str,
    window: TrafficWindow | timedelta | int = DEFAULT_WINDOW,
    *,
    now: datetime | None = None,
    max_rows: int = MAX_WINDOW_ROWS,
) -> CapturedWindow:
    """Read an endpoint's primary predictions with status 200 from the prediction log.

    Args:
        store: The prediction log.
        endpoint: The endpoint.
        window: A :class:`TrafficWindow`, a span of time, or a number of latest records.
        now: The time the window is relative to (timezone-aware); default the store's clock.
        max_rows: Most records read; of a larger window, the ``max_rows`` records with
            the smallest hash of request id and row are read: a uniform sample, the same
            on every read.

    Returns:
        The window; an endpoint without records gives an empty one.

    Raises:
        InvalidInputError: A bad endpoint name, window, ``max_rows`` or naive ``now``.
        QueryError: The log could not be read in the store's query timeout.
    """
    from ferryman.capture.query import aware, filters

    spec = _as_window(window)
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
        raise InvalidInputError(f"max_rows must be an integer >= 1, got {max_rows!r}.")
    try:
        until = (store.now() if now is None else aware(now, "now")) - spec.offset
        since = None if spec.span is None else until - spec.span
    except OverflowError:
        raise InvalidInputError(
            f"The window ({spec.describe()}) reaches back before the year 1; give a shorter "
            "span or offset."
        ) from None
    where, parameters = filters(
        version=spec.version, role="primary", status=200, since=since, until=until
    )
    source = f"SELECT * FROM predictions{where}"
    if spec.rows is not None:
        source += f" ORDER BY time DESC LIMIT {int(spec.rows)}"
    stats = store.reader.run(
        "SELECT count(*), list(DISTINCT model_version ORDER BY model_version) FILTER "
        f"(WHERE model_version IS NOT NULL), min(time) FROM ({source}) AS w",
        parameters,
        endpoints=[endpoint],
    )
    matched, versions, first = stats.rows[0]
    if matched > max_rows:
        # The records with the smallest hashes of (request id, row): a uniform sample,
        # the same one on every read.
        source = (
            f'SELECT * FROM ({source}) AS s ORDER BY hash(request_id, "row"), request_id, '
            f'"row" LIMIT {int(max_rows)}'
        )
    table = store.reader.arrow(
        "SELECT COLUMNS('^(inputs|prediction|probabilities)$') "
        f'FROM ({source}) AS w ORDER BY time, request_id, "row"',
        parameters,
        endpoints=[endpoint],
    )
    frame, features, outputs, digests = _shape(table)
    info = WindowInfo(
        endpoint=endpoint,
        window=spec,
        since=since if spec.span is not None else first,
        until=until,
        matched=int(matched),
        rows=len(frame),
        versions=tuple(versions or ()),
    )
    return CapturedWindow(info, frame, features, outputs, digests)


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
    """

    endpoint: str
    report: DriftReport
    window: WindowInfo
    reference_window: WindowInfo | None = None
    protected: Mapping[str, str] = field(default_factory=dict)
    min_rows: int = 100

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
        ``reference_window`` and ``protected_columns``."""
        data = self.report.to_dict(distribution=distribution)
        data["endpoint"] = self.endpoint
        data["status"] = self.status
        data["window"] = self.window.to_dict()
        data["reference_window"] = (
            None if self.reference_window is None else self.reference_window.to_dict()
        )
        data["protected_columns"] = dict(self.protected)
        return data

    def to_json(self, *, indent: int | None = 2) -> str:
        """Return the report as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def to_html(self) -> str:
        """Return the standalone HTML page (needs Plotly; see :meth:`DriftReport.to_html`)."""
        return self.report.to_html()

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the report as HTML (``.html``, ``.htm``) or JSON (``.json``).

        Raises:
            InvalidInputError: Another file extension.
            MissingDependencyError: HTML asked and Plotly is not installed.
        """
        target = Path(path)
        suffix = target.suffix.lower()
        if suffix in (".html", ".htm"):
            text = self.to_html()
        elif suffix == ".json":
            text = self.to_json() + "\n"
        else:
            raise InvalidInputError(
                f"Unsupported report file {str(target)!r}: expected .html or .json."
            )
        target.write_text(text, encoding="utf-8")
        return target


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

    Returns:
        The report.

    Raises:
        InvalidInputError: A bad endpoint name, window, time or unreadable reference.
        QueryError: The log could not be read in the store's query timeout.
    """
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
    return EndpointDriftReport(
        endpoint=endpoint,
        report=report,
        window=current.info,
        reference_window=None if reference_window is None else reference_window.info,
        protected=protected,
        min_rows=template.min_rows,
    )


# -- Prometheus gauges ---------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class DriftMetrics:
    """The drift gauges, registered on one Prometheus registry.

    Build with :meth:`create`. Gauges (all ``mostrecent`` across the processes of a
    multiprocess server, so the latest evaluation wins):

    - ``ferryman_feature_drift{endpoint,feature,test}``: the feature's effect size;
    - ``ferryman_feature_drift_p_value{endpoint,feature,test}``: its p-value;
    - ``ferryman_feature_drifted{endpoint,feature}``: 1 when it drifted, else 0;
    - ``ferryman_dataset_drift{endpoint}``: 1 when the dataset drifted, else 0;
    - ``ferryman_prediction_drift{endpoint,output,test}``: a model output's effect size;
    - ``ferryman_drift_window_rows{endpoint}``: records in the evaluated window;
    - ``ferryman_drift_last_run_timestamp_seconds{endpoint}``: when it was evaluated;

    and the counter ``ferryman_drift_failures_total{endpoint}``. A series that the latest
    evaluation did not produce (a feature with too little data, a test that changed) is
    set to NaN rather than left at a stale value.
    """

    feature_drift: Gauge
    feature_p_value: Gauge
    feature_drifted: Gauge
    dataset_drift: Gauge
    prediction_drift: Gauge
    window_rows: Gauge
    last_run: Gauge
    failures: Counter
    _published: dict[str, set[tuple[str, tuple[str, ...]]]] = field(
        default_factory=dict, repr=False
    )

    @classmethod
    def create(cls, registry: CollectorRegistry) -> DriftMetrics:
        """Register the drift gauges on ``registry`` (never the global one) and return them.

        Raises:
            MissingDependencyError: prometheus-client is not installed.
        """
        try:
            from prometheus_client import Counter, Gauge
        except ImportError as exc:
            raise MissingDependencyError(
                "prometheus-client", feature="Drift gauges", extra="server"
            ) from exc

        def gauge(name: str, text: str, labels: tuple[str, ...]) -> Gauge:
            return Gauge(
                name,
                text,
                labels,
                namespace="ferryman",
                registry=registry,
                multiprocess_mode="mostrecent",
            )

        feature = ("endpoint", "feature", "test")
        return cls(
            feature_drift=gauge(
                "feature_drift", "Effect size of a feature's drift test, latest window.", feature
            ),
            feature_p_value=gauge(
                "feature_drift_p_value",
                "p-value of a feature's drift test, latest window.",
                feature,
            ),
            feature_drifted=gauge(
                "feature_drifted",
                "1 when the feature drifted in the latest window, else 0.",
                ("endpoint", "feature"),
            ),
            dataset_drift=gauge(
                "dataset_drift",
                "1 when the dataset drifted in the latest window, else 0.",
                ("endpoint",),
            ),
            prediction_drift=gauge(
                "prediction_drift",
                "Effect size of a model output's drift test, latest window.",
                ("endpoint", "output", "test"),
            ),
            window_rows=gauge(
                "drift_window_rows",
                "Captured records in the latest evaluated window.",
                ("endpoint",),
            ),
            last_run=gauge(
                "drift_last_run_timestamp_seconds",
                "When the endpoint's drift was last evaluated (seconds since the epoch).",
                ("endpoint",),
            ),
            failures=Counter(
                "drift_failures",
                "Drift evaluations that failed (the log unreadable, a bad reference).",
                ("endpoint",),
                namespace="ferryman",
                registry=registry,
            ),
        )

    def publish(self, result: EndpointDriftReport, *, timestamp: float) -> None:
        """Set the endpoint's gauges from a report evaluated at ``timestamp`` (epoch seconds)."""
        endpoint = result.endpoint
        values: dict[tuple[str, tuple[str, ...]], float] = {}
        for feature in result.report.data.features:
            values[("feature_drifted", (endpoint, feature.name))] = float(feature.drifted)
            if feature.test is not None:
                labels = (endpoint, feature.name, feature.test)
                values[("feature_drift", labels)] = _number(feature.effect_size)
                values[("feature_p_value", labels)] = _number(feature.p_value)
        outputs = result.report.predictions.result
        for output in () if outputs is None else outputs.features:
            if output.test is not None:
                labels = (endpoint, output.name, output.test)
                values[("prediction_drift", labels)] = _number(output.effect_size)
        values[("dataset_drift", (endpoint,))] = float(result.dataset_drift)
        values[("window_rows", (endpoint,))] = float(result.window.rows)
        for key, value in values.items():
            self._gauge(key[0]).labels(*key[1]).set(value)
        self._clear(endpoint, keep=set(values))
        self.last_run.labels(endpoint).set(timestamp)

    def retire(self, endpoint: str) -> None:
        """Set every gauge of an endpoint no longer monitored to NaN (its last run stays)."""
        self._clear(endpoint, keep=set())

    def _clear(self, endpoint: str, *, keep: set[tuple[str, tuple[str, ...]]]) -> None:
        for name, labels in self._published.get(endpoint, set()) - keep:
            self._gauge(name).labels(*labels).set(math.nan)
        self._published[endpoint] = keep

    def _gauge(self, name: str) -> Gauge:
        gauge: Gauge = getattr(self, name)
        return gauge


# -- the monitor ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MonitorTarget:
    """One endpoint a :class:`DriftMonitor` watches, and what its window is compared with.

    Attributes:
        endpoint: The endpoint.
        reference: The served version's stored profile (or its dict), another window of
            its traffic, a DataFrame or a file; ``None`` when there is none (the endpoint
            is skipped and the run says why).
        reference_name: How reports name the reference, e.g. ``churn/3 (stored
            reference profile)``.
        version: Only records of this model version; ``None``: every version.
        privacy: The endpoint's privacy policy (see :func:`endpoint_report`).
    """

    endpoint: str
    reference: ReferenceSource | TrafficWindow | None
    reference_name: str = ""
    version: str | None = None
    privacy: PrivacyPolicy | Mapping[str, str] | None = None


@dataclass(frozen=True)
class MonitorRun:
    """What one evaluation did.

    Attributes:
        at: The time the windows were relative to.
        led: Whether this process evaluated (``False``: another process leads).
        reports: The report per endpoint evaluated.
        skipped: Why an endpoint was not evaluated, per endpoint.
        failures: The error of each endpoint whose evaluation failed.
    """

    at: datetime
    led: bool = True
    reports: Mapping[str, EndpointDriftReport] = field(default_factory=dict)
    skipped: Mapping[str, str] = field(default_factory=dict)
    failures: Mapping[str, str] = field(default_factory=dict)


class DriftMonitor:
    """Evaluate endpoints' rolling windows of captured traffic on a schedule.

    Each run reads every target's window (:func:`endpoint_report`), publishes the result
    on the gauges and keeps the latest report per endpoint (:meth:`find_report`). Runs
    happen on a background thread (:meth:`start`), never on an event loop; one
    endpoint's failure is logged, counted and does not stop the others.

    Args:
        store: The prediction log.
        metrics: Where results are published (:meth:`DriftMetrics.create`).
        targets: Returns the endpoints to evaluate now (read at every run, so it follows
            new endpoints and versions).
        interval: Seconds between runs.
        window: The rolling window.
        data: The data drift configuration; default ``DataDrift(n_jobs=1)``, so a
            background evaluation never takes every core from serving.
        max_rows: Most records read per window.
        clock: Wall clock (seconds since the epoch).
        leader: Returns whether this process should evaluate now (e.g. holds a lease),
            so several server processes do not repeat the work; ``None``: always.
    """

    def __init__(
        self,
        *,
        store: LogStore,
        metrics: DriftMetrics,
        targets: Callable[[], Sequence[MonitorTarget]],
        interval: float = DEFAULT_INTERVAL,
        window: TrafficWindow | timedelta | int = DEFAULT_WINDOW,
        data: DataDrift | None = None,
        max_rows: int = MAX_WINDOW_ROWS,
        clock: Callable[[], float] = time.time,
        leader: Callable[[], bool] | None = None,
    ) -> None:
        if isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0:
            raise InvalidInputError(
                f"interval must be a positive number of seconds, got {interval!r}."
            )
        if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
            raise InvalidInputError(f"max_rows must be an integer >= 1, got {max_rows!r}.")
        self.store = store
        self.metrics = metrics
        self.targets = targets
        self.interval = float(interval)
        self.window = _as_window(window)
        self.data = data if data is not None else DataDrift(n_jobs=1)
        self.max_rows = max_rows
        self.clock = clock
        self.leader = leader
        self._reports: dict[str, EndpointDriftReport] = {}
        self._lock = threading.Lock()
        self._running = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return (
            f"DriftMonitor(interval={self.interval!r}, window={self.window!r}, "
            f"data={self.data!r}, max_rows={self.max_rows!r})"
        )

    def start(self) -> None:
        """Evaluate now and then every ``interval`` seconds on a daemon thread (idempotent)."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="ferryman-drift", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the thread, letting a run in progress finish (blocking up to ``timeout``)."""
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    def find_report(self, endpoint: str) -> EndpointDriftReport | None:
        """The latest report of ``endpoint``, or ``None`` before its first evaluation."""
        with self._lock:
            return self._reports.get(endpoint)

    def evaluate_once(self, now: datetime | None = None) -> MonitorRun:
        """Evaluate every target's window ending at ``now`` and publish the results.

        Blocking (reading the log and testing take seconds): call it from a worker
        thread, never on an event loop. Concurrent calls run one after the other.

        Args:
            now: The time the windows end (timezone-aware); default the clock's time.

        Raises:
            InvalidInputError: ``now`` is naive.
        """
        moment = datetime.fromtimestamp(self.clock(), UTC) if now is None else now
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise InvalidInputError(
                f"now is a naive datetime ({moment.isoformat()}); give a timezone-aware one."
            )
        with self._running:
            return self._evaluate(moment)

    def _evaluate(self, moment: datetime) -> MonitorRun:
        if self.leader is not None and not self.leader():
            return MonitorRun(at=moment, led=False)
        reports: dict[str, EndpointDriftReport] = {}
        skipped: dict[str, str] = {}
        failures: dict[str, str] = {}
        targets = list(self.targets())
        for target in targets:
            if target.reference is None:
                skipped[target.endpoint] = (
                    "no reference: the served version has no stored reference profile"
                )
                continue
            window = self.window
            if target.version is not None:
                window = replace(window, version=target.version)
            try:
                result = endpoint_report(
                    self.store,
                    target.endpoint,
                    reference=target.reference,
                    window=window,
                    now=moment,
                    privacy=target.privacy,
                    data=self.data,
                    max_rows=self.max_rows,
                    reference_name=target.reference_name,
                )
            except Exception as exc:  # one endpoint's failure must not stop the others
                failures[target.endpoint] = f"{type(exc).__name__}: {exc}"
                self.metrics.failures.labels(target.endpoint).inc()
                logger.error(
                    "drift: evaluating endpoint %s failed (%s)", target.endpoint, type(exc).__name__
                )
                continue
            self.metrics.publish(result, timestamp=moment.timestamp())
            reports[target.endpoint] = result
        watched = {target.endpoint for target in targets} - set(skipped)
        with self._lock:
            for endpoint in set(self._reports) - watched:
                del self._reports[endpoint]
                self.metrics.retire(endpoint)
            self._reports.update(reports)
        return MonitorRun(at=moment, reports=reports, skipped=skipped, failures=failures)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.evaluate_once()
            except Exception as exc:  # the thread must outlive a failing targets() or leader()
                logger.error("drift: a monitor run failed (%s)", type(exc).__name__)
            if self._stopping.wait(self.interval):
                return


# -- internals -----------------------------------------------------------------------------


def _duration(value: timedelta | None) -> str:
    seconds = 0.0 if value is None else value.total_seconds()
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _as_window(window: TrafficWindow | timedelta | int) -> TrafficWindow:
    if isinstance(window, TrafficWindow):
        return window
    if isinstance(window, timedelta):
        return TrafficWindow(span=window)
    if isinstance(window, int) and not isinstance(window, bool):
        return TrafficWindow(rows=window)
    raise InvalidInputError(
        f"A window is a TrafficWindow, a timedelta or a number of records; got {window!r}."
    )


def _policy(privacy: PrivacyPolicy | Mapping[str, str] | None) -> PrivacyPolicy:
    from ferryman.capture import PrivacyPolicy

    if isinstance(privacy, PrivacyPolicy):
        return privacy
    return PrivacyPolicy.from_mapping(privacy or {})


def _shape(
    table: pa.Table,
) -> tuple[pd.DataFrame, tuple[str, ...], tuple[str, ...], frozenset[str]]:
    """The features (from ``inputs``) and outputs of captured records, as one frame."""
    arrays: dict[str, pa.Array] = {}
    digests: set[str] = set()
    names = table.column_names
    if "inputs" in names and pa.types.is_struct(table.schema.field("inputs").type):
        inputs = table.column("inputs").combine_chunks()
        for position, child in enumerate(inputs.flatten()):
            name = inputs.type.field(position).name
            arrays[name] = child
            if _all_digests(child):
                digests.add(name)
    features = tuple(arrays)
    if "prediction" in names:
        prediction = table.column("prediction").combine_chunks()
        if pa.types.is_list(prediction.type) or pa.types.is_large_list(prediction.type):
            lengths = pc.list_value_length(prediction)
            width = pc.max(lengths).as_py() or 0
            for position in range(width):
                arrays.setdefault(f"prediction[{position}]", _element(prediction, position))
        elif not pa.types.is_null(prediction.type):
            arrays.setdefault("prediction", prediction)
    if "probabilities" in names and pa.types.is_map(table.schema.field("probabilities").type):
        probabilities = table.column("probabilities").combine_chunks()
        for key in pc.unique(probabilities.keys).to_pylist():
            if key is not None:
                arrays.setdefault(
                    f"probability[{key}]",
                    pc.map_lookup(probabilities, pa.scalar(key, pa.string()), "first"),
                )
    outputs = tuple(name for name in arrays if name not in features)
    frame = (
        pa.table(arrays).to_pandas()
        if arrays
        else pd.DataFrame(index=pd.RangeIndex(table.num_rows))
    )
    return frame, features, outputs, frozenset(digests)


def _element(values: pa.Array, position: int) -> pa.Array:
    try:
        return pc.list_element(values, position)
    except (pa.ArrowInvalid, pa.ArrowIndexError):  # lists of different lengths
        rows = values.to_pylist()
        return pa.array(
            [row[position] if row is not None and len(row) > position else None for row in rows]
        )


def _all_digests(values: pa.Array) -> bool:
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return False
    if values.null_count == len(values):
        return False
    matches = pc.match_substring_regex(values, _DIGEST.pattern)
    return bool(pc.all(matches, skip_nulls=True).as_py())


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


def _number(value: float | None) -> float:
    return math.nan if value is None else float(value)


__all__ = [
    "DEFAULT_INTERVAL",
    "DEFAULT_WINDOW",
    "MAX_WINDOW_ROWS",
    "CapturedWindow",
    "DriftMetrics",
    "DriftMonitor",
    "EndpointDriftReport",
    "MonitorRun",
    "MonitorTarget",
    "TrafficWindow",
    "WindowInfo",
    "endpoint_report",
    "read_window",
]
