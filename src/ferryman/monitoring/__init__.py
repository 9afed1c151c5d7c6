"""Monitoring: software, input and output metrics of the serving path.

*Software metrics* say how the service behaves, whatever the model predicts: requests
and their status, latency, errors by kind, rows per model call, time queued and
computing, model load time, and the processes' memory, CPU and open files.
*Input and output metrics* say what the models receive and return: missing values,
values outside the training range and unseen categories per feature, schema
violations, null predictions, predicted classes, scores and the mean prediction.
:class:`ServingMetrics` builds them on a registry given to it (one per application, never
a global one) and renders them for ``GET /metrics``, merging every worker process of
``ferryman serve --workers N`` through prometheus-client's multiprocess mode.

*Windowed metrics* are the same signals over a time window, summed over every server
process, for rollout gates and alert rules (``error_rate < 0.01`` over a canary step,
``missing_rate{feature="age"} > 0.2`` for 5 minutes). The server calls one
:class:`MonitoringRecorder` per request; it counts into 10-second buckets per endpoint,
version and role, which a :class:`MetricFlusher` writes to the metadata store each
second, and a :class:`StoreMetricSource` merges the buckets of a window into a
:class:`Measurement`. The names gates and alerts use form the :data:`METRIC_CATALOGUE`.
"""

from __future__ import annotations

from ferryman.monitoring.base import (
    METRIC_CATALOGUE,
    Measurement,
    MetricSource,
    MetricSpec,
    WindowSelector,
)
from ferryman.monitoring.flusher import MetricFlusher
from ferryman.monitoring.metrics import (
    CaptureMetrics,
    EndpointSeries,
    ModelDataMetrics,
    RequestSeries,
    ServingMetrics,
)
from ferryman.monitoring.recorder import MonitoringRecorder
from ferryman.monitoring.source import StoreMetricSource
from ferryman.monitoring.window import WindowAccumulator

__all__ = [
    "METRIC_CATALOGUE",
    "CaptureMetrics",
    "EndpointSeries",
    "Measurement",
    "MetricFlusher",
    "MetricSource",
    "MetricSpec",
    "ModelDataMetrics",
    "MonitoringRecorder",
    "RequestSeries",
    "ServingMetrics",
    "StoreMetricSource",
    "WindowAccumulator",
    "WindowSelector",
]
