"""Monitoring: the software metrics of the serving path, exposed to Prometheus.

*Software metrics* say how the service behaves, whatever the model predicts: requests
and their status, latency, errors by kind, rows per model call, time queued and
computing, model load time, and the processes' memory, CPU and open files.
:class:`ServingMetrics` builds them on a registry given to it (one per application, never
a global one) and renders them for ``GET /metrics``, merging every worker process of
``ferryman serve --workers N`` through prometheus-client's multiprocess mode.
"""

from __future__ import annotations

from ferryman.monitoring.metrics import EndpointSeries, RequestSeries, ServingMetrics

__all__ = ["EndpointSeries", "RequestSeries", "ServingMetrics"]
