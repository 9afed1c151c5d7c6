"""Online serving: endpoints, the runtime pool, micro-batching and protocol codecs.

An *endpoint* (``churn``) is a named entry point that serves a model reference
(``churn@production``) with its own limits: micro-batching, timeout, the policy for
unknown columns, passthrough columns (:class:`EndpointService`, :class:`EndpointConfig`).

The *runtime pool* (:class:`RuntimePool`) keeps every endpoint's version loaded and
warmed up in each server process, follows alias moves and endpoint changes without a
restart or a failed request, and runs model calls on per-endpoint threads with a
timeout. A :class:`Deployment` is one endpoint serving one version; requests validate
against its signature and run through its runner: one call per request
(:class:`DirectRunner`) or merged with concurrent requests (:class:`MicroBatcher`).

Protocol codecs (:mod:`ferryman.serving.codecs`) turn request bodies of the native,
Open Inference Protocol V2 and MLflow protocols into batches and predictions back into
bodies, without any HTTP.
"""

from __future__ import annotations

from ferryman.serving.batching import DirectRunner, MicroBatcher, TimedPrediction
from ferryman.serving.endpoints import EndpointConfig, EndpointService
from ferryman.serving.runtime import (
    Deployment,
    EndpointRuntime,
    EndpointSource,
    EndpointSpec,
    LoadedVersion,
    RuntimePool,
)

__all__ = [
    "Deployment",
    "DirectRunner",
    "EndpointConfig",
    "EndpointRuntime",
    "EndpointService",
    "EndpointSource",
    "EndpointSpec",
    "LoadedVersion",
    "MicroBatcher",
    "RuntimePool",
    "TimedPrediction",
]
