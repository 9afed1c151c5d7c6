"""Capture: the prediction log, ground-truth feedback, review, and the privacy policy.

Every prediction an endpoint makes (primary, shadow or batch) becomes a *record*: the
request id and row, time, model version and role, the inputs after the endpoint's
privacy policy, the prediction and class probabilities, latency, status and error. The
serving path hands records to a :class:`CaptureWriter` at the cost of a list append;
a background thread writes them as Parquet segments partitioned by endpoint and date,
which :class:`LogStore` queries with DuckDB (views ``predictions``, ``feedback``,
``reviews``). *Feedback* is the truth that arrives later for a request id; joined with
the records it gives realised performance per version. *Review* lists records worth a
human look and stores verdicts. See ``docs/capture.md``.
"""

from __future__ import annotations

from ferryman.capture._schemas import RESERVED_COLUMNS
from ferryman.capture.feedback import Feedback, FeedbackReport
from ferryman.capture.log import PredictionLog
from ferryman.capture.maintenance import CompactionReport, EraseReport, RetentionReport
from ferryman.capture.performance import PerformanceReport, VersionPerformance
from ferryman.capture.privacy import PrivacyAction, PrivacyPolicy, keyed_hash, redact_text
from ferryman.capture.query import QueryResult
from ferryman.capture.review import REASONS, VERDICTS, ReviewCandidate, ReviewMark, Verdict
from ferryman.capture.store import LogStore
from ferryman.capture.window import parse_window
from ferryman.capture.writer import ROLES, CaptureWriter, EndpointCapture, Role, sampled

__all__ = [
    "REASONS",
    "RESERVED_COLUMNS",
    "ROLES",
    "VERDICTS",
    "CaptureWriter",
    "CompactionReport",
    "EndpointCapture",
    "EraseReport",
    "Feedback",
    "FeedbackReport",
    "LogStore",
    "PerformanceReport",
    "PredictionLog",
    "PrivacyAction",
    "PrivacyPolicy",
    "QueryResult",
    "RetentionReport",
    "ReviewCandidate",
    "ReviewMark",
    "Role",
    "Verdict",
    "VersionPerformance",
    "keyed_hash",
    "parse_window",
    "redact_text",
    "sampled",
]
