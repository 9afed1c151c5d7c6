"""Micro-batching through HTTP: each request gets its own rows and reports its timings."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import load_breast_cancer

from ferryman.serving import EndpointService
from tests.server.conftest import ServeApp

pytestmark = pytest.mark.anyio

CANCER = load_breast_cancer(as_frame=True).data


async def post_together(served: Any, rows: list[list[dict[str, Any]]]) -> list[Any]:
    """POST each request body's rows to the cancer endpoint, all at once."""
    return list(
        await asyncio.wait_for(
            asyncio.gather(
                *(
                    served.client.post("/v1/endpoints/cancer/predict", json={"instances": r})
                    for r in rows
                )
            ),
            30,
        )
    )


async def test_concurrent_requests_get_the_predictions_they_would_get_alone(
    serve_app: ServeApp, endpoints: EndpointService
) -> None:
    rows = [CANCER.iloc[i : i + 1 + i % 3].to_dict("records") for i in range(0, 120, 4)]
    async with serve_app() as served:
        alone = [
            (await served.client.post("/v1/endpoints/cancer/predict", json={"instances": r}))
            for r in rows
        ]
    endpoints.update("cancer", max_batch_size=32, max_latency_ms=20.0)
    async with serve_app() as served:
        together = await post_together(served, rows)
        exposition = (await served.client.get("/metrics")).text

    assert [r.json()["predictions"] for r in together] == [r.json()["predictions"] for r in alone]
    calls = {
        sample.name: sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name.startswith("ferryman_batch_size") and sample.labels["endpoint"] == "cancer"
    }
    # One observation per model call: fewer than the requests, and every row in one call.
    assert 0 < calls["ferryman_batch_size_count"] < len(rows)
    assert calls["ferryman_batch_size_sum"] == sum(len(r) for r in rows)
    for merged, single in zip(together, alone, strict=True):
        # BLAS may sum in another order for another number of rows: the last bits of a
        # probability can differ, exactly as they do between two unbatched batch sizes.
        np.testing.assert_allclose(
            merged.json()["probabilities"], single.json()["probabilities"], rtol=1e-12, atol=0
        )
    assert all(float(r.headers["x-queue-time-ms"]) >= 0 for r in together)
    assert all(float(r.headers["x-compute-time-ms"]) > 0 for r in together)


async def test_one_bad_request_in_a_batch_fails_alone(
    serve_app: ServeApp, endpoints: EndpointService
) -> None:
    endpoints.update("toy", max_batch_size=16, max_latency_ms=20.0)
    xs = [1.0, 2.0, -1.0, 3.0, 4.0, 5.0]
    async with serve_app() as served:
        responses = await asyncio.wait_for(
            asyncio.gather(
                *(
                    served.client.post(
                        "/v1/endpoints/toy/predict",
                        json={"instances": [{"x": x, "delay": 0.01}]},
                    )
                    for x in xs
                )
            ),
            30,
        )

    assert [r.status_code for r in responses] == [200, 200, 500, 200, 200, 200]
    assert [r.json()["predictions"] for r in responses if r.status_code == 200] == [
        [2.0],
        [4.0],
        [6.0],
        [8.0],
        [10.0],
    ]


async def test_a_request_with_an_invalid_row_fails_alone_naming_its_own_row(
    serve_app: ServeApp, endpoints: EndpointService
) -> None:
    rows = [CANCER.iloc[i : i + 2].to_dict("records") for i in range(0, 40, 2)]
    rows[5][1]["mean radius"] = "wide"
    endpoints.update("cancer", max_batch_size=32, max_latency_ms=20.0)
    async with serve_app() as served:
        responses = await post_together(served, rows)
        alone = [
            await served.client.post("/v1/endpoints/cancer/predict", json={"instances": r})
            for r in rows[:5] + rows[6:]
        ]

    assert [r.status_code for r in responses] == [200] * 5 + [400] + [200] * 14
    error = responses[5].json()["error"]
    assert "mean radius" in error and "row 1" in error
    answered = responses[:5] + responses[6:]
    assert [r.json()["predictions"] for r in answered] == [r.json()["predictions"] for r in alone]
