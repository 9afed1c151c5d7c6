"""The diff report's parts and its three renderings: a dict (JSON), an HTML page, a file.

The report is built by :mod:`ferryman.rollout.diff`, which is where users import it from.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from ferryman._report_files import write_report
from ferryman.capture.query import jsonable
from ferryman.rollout._diff_rows import finite

#: What the predictions are: labels (compared for equality) or numbers (subtracted).
Kind = Literal["classification", "regression"]
KINDS: Final[tuple[str, ...]] = ("classification", "regression")

#: Where the candidate's answers come from.
Source = Literal["shadow", "replay"]


@dataclass(frozen=True)
class VersionStats:
    """One version's side of the comparison, over the requests both versions were asked.

    Attributes:
        version: ``name/N`` (several, comma-separated, when the rows came from several).
        requests: Distinct requests.
        rows: Rows (records); a request of 50 rows makes 50.
        errors: Rows without a usable answer: status >= 400, or a null or NaN prediction.
        error_rate: ``errors / rows``, in [0, 1]; ``None`` without rows.
        p50_latency_ms: Median latency per request, milliseconds; ``None`` when unknown.
        p99_latency_ms: 99th percentile latency per request, milliseconds.
        error_reasons: The most frequent reasons, ``(reason, rows)``, most frequent first.
    """

    version: str
    requests: int
    rows: int
    errors: int
    error_rate: float | None
    p50_latency_ms: float | None
    p99_latency_ms: float | None
    error_reasons: tuple[tuple[str, int], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "version": self.version,
            "requests": self.requests,
            "rows": self.rows,
            "errors": self.errors,
            "error_rate": finite(self.error_rate),
            "p50_latency_ms": finite(self.p50_latency_ms),
            "p99_latency_ms": finite(self.p99_latency_ms),
            "error_reasons": [{"reason": r, "rows": n} for r, n in self.error_reasons],
        }


@dataclass(frozen=True)
class Disagreement:
    """One row where the versions differ.

    Attributes:
        request_id: The request's id, when known.
        row: The row within the request, when known.
        time: When the stable version answered (UTC), when known.
        inputs: The captured inputs (after the endpoint's privacy policy), when known.
        stable: The stable version's prediction (model payload).
        candidate: The candidate's prediction (model payload).
        stable_probabilities: Class -> probability, when the stable version gives them.
        candidate_probabilities: Class -> probability, when the candidate gives them.
        difference: Regression: candidate minus stable. Binary classification: the same
            for the positive class's probability. Multiclass: the largest absolute change
            of any class's probability. ``None`` without numbers to compare.
        agree: Whether the predicted labels are equal (classification; ``False`` for
            regression, where every listed row differs).
    """

    request_id: str | None
    row: int | None
    time: datetime | None
    inputs: dict[str, Any] | None
    stable: Any
    candidate: Any
    stable_probabilities: dict[str, float] | None
    candidate_probabilities: dict[str, float] | None
    difference: float | None
    agree: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "request_id": self.request_id,
            "row": self.row,
            "time": None if self.time is None else self.time.isoformat(),
            "inputs": jsonable(self.inputs),
            "stable": jsonable(self.stable),
            "candidate": jsonable(self.candidate),
            "stable_probabilities": jsonable(self.stable_probabilities),
            "candidate_probabilities": jsonable(self.candidate_probabilities),
            "difference": finite(self.difference),
            "agree": self.agree,
        }


@dataclass(frozen=True)
class Confusion:
    """Stable labels (rows) against candidate labels (columns), over the compared rows.

    Attributes:
        labels: The labels (text), the same for rows and columns; labels beyond
            :data:`MAX_CONFUSION_LABELS` are pooled as :data:`OTHER_LABEL`.
        counts: ``counts[i][j]`` rows the stable version labelled ``labels[i]`` and the
            candidate ``labels[j]``.
    """

    labels: tuple[str, ...]
    counts: tuple[tuple[int, ...], ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"labels": list(self.labels), "counts": [list(row) for row in self.counts]}


@dataclass(frozen=True)
class DiffHistogram:
    """A histogram of the signed differences (candidate minus stable).

    Attributes:
        of: What was subtracted, e.g. ``prediction`` or ``probability of '1'``.
        edges: Bin edges, one more than ``counts``.
        counts: Rows per bin.
    """

    of: str
    edges: tuple[float, ...]
    counts: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"of": self.of, "edges": list(self.edges), "counts": list(self.counts)}


@dataclass(frozen=True)
class DiffReport:
    """How a candidate's answers differ from the stable version's on the same traffic.

    Attributes:
        endpoint: The endpoint whose traffic was compared.
        source: ``shadow`` (captured shadow records) or ``replay`` (re-scored offline).
        kind: ``classification`` or ``regression``.
        stable: The stable version's side.
        candidate: The candidate's side.
        rows_compared: Rows both versions answered; every figure below is over them.
        agreement_rate: Share of rows with the same predicted label, in [0, 1]
            (classification; ``None`` for regression or without rows).
        mean_abs_diff: Mean absolute difference of the predictions (regression) or of
            the positive class's probability (binary classifiers with probabilities).
        max_abs_diff: The largest such difference.
        difference_of: What the differences are of (``prediction``, ``probability of
            '<class>'``), or ``None`` when there are none.
        positive_class: The positive class of a binary classifier (its second class).
        disagreements: The rows that differ most, largest first: label mismatches
            first (largest probability gap first), then other probability changes
            (classification); largest absolute difference (regression).
        confusion: Stable against candidate labels (classification).
        histogram: The signed differences, when there are numbers to subtract.
        since: Start of the window (UTC), inclusive, when known.
        until: End of the window (UTC), exclusive, when known.
        warnings: What limits the comparison (hashed or dropped inputs, truncation,
            mixed versions), in words.
        created_at: When the report was made (UTC).
    """

    endpoint: str
    source: Source
    kind: Kind
    stable: VersionStats
    candidate: VersionStats
    rows_compared: int
    agreement_rate: float | None
    mean_abs_diff: float | None
    max_abs_diff: float | None
    difference_of: str | None
    positive_class: str | None
    disagreements: tuple[Disagreement, ...]
    confusion: Confusion | None
    histogram: DiffHistogram | None
    since: datetime | None = None
    until: datetime | None = None
    warnings: tuple[str, ...] = ()
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-safe values (NaN and infinities become ``null``)."""
        from ferryman import __version__

        return {
            "endpoint": self.endpoint,
            "source": self.source,
            "kind": self.kind,
            "since": None if self.since is None else self.since.isoformat(),
            "until": None if self.until is None else self.until.isoformat(),
            "stable": self.stable.to_dict(),
            "candidate": self.candidate.to_dict(),
            "rows_compared": self.rows_compared,
            "agreement_rate": finite(self.agreement_rate),
            "mean_abs_diff": finite(self.mean_abs_diff),
            "max_abs_diff": finite(self.max_abs_diff),
            "difference_of": self.difference_of,
            "positive_class": self.positive_class,
            "confusion": None if self.confusion is None else self.confusion.to_dict(),
            "histogram": None if self.histogram is None else self.histogram.to_dict(),
            "disagreements": [d.to_dict() for d in self.disagreements],
            "warnings": list(self.warnings),
            "created_at": self.created_at.isoformat(),
            "ferryman_version": __version__,
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """Return the report as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def to_html(self) -> str:
        """Return the report as one standalone HTML page (Plotly's JavaScript embedded).

        Raises:
            MissingDependencyError: Plotly is not installed (``pip install 'ferryman[drift]'``).
        """
        from ferryman.rollout._diff_html import render_html

        return render_html(self)

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_html` (``.html``, ``.htm``) or :meth:`to_json` (``.json``) to ``path``.

        Raises:
            InvalidInputError: Another file extension; the message names the file.
            MissingDependencyError: HTML asked and Plotly is not installed.
        """
        return write_report(path, to_html=self.to_html, to_json=self.to_json)
