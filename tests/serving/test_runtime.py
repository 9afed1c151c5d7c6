"""The runtime pool: load and warm up, follow alias moves and endpoint changes, time out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from ferryman.config import Settings
from ferryman.errors import (
    EndpointNotFoundError,
    EndpointNotReadyError,
    PredictionTimeoutError,
    SchemaValidationError,
    StoreUnavailableError,
)
from ferryman.registry import Registry
from ferryman.serving import (
    DirectRunner,
    EndpointRuntime,
    EndpointService,
    EndpointSource,
    RuntimePool,
)
from ferryman.serving._threads import DaemonThreadExecutor
from ferryman.serving.codecs import DecodedBatch

pytestmark = pytest.mark.anyio

WAIT = 30.0
CANCER = load_breast_cancer(as_frame=True).data


@asynccontextmanager
async def running_pool(
    registry: Registry, endpoints: EndpointSource, **options: Any
) -> AsyncIterator[RuntimePool]:
    options.setdefault("refresh_seconds", 3600.0)
    pool = RuntimePool(registry=registry, endpoints=endpoints, **options)
    await pool.start()
    try:
        await asyncio.wait_for(pool.wait_loaded(), WAIT)
        yield pool
    finally:
        await pool.stop()


def toy(x: float, delay: float = 0.0) -> DecodedBatch:
    return DecodedBatch([{"x": x, "delay": delay}])


async def predict(pool: RuntimePool, name: str, batch: DecodedBatch) -> list[Any]:
    timed = await pool.get(name).ready().predict(batch)
    values: list[Any] = timed.prediction.predictions.tolist()
    return values


async def test_every_endpoint_is_loaded_warmed_up_and_ready(
    store_registry: Registry, store_endpoints: EndpointService
) -> None:
    async with running_pool(store_registry, store_endpoints) as pool:
        names = {runtime.name: runtime.ready().version.ref for runtime in pool.list()}
        layout = pool.get("cancer").ready().version.layout

        assert pool.is_ready
        assert names == {"cancer": "cancer/1", "iris": "iris/1", "mixed": "mixed/1", "toy": "toy/1"}
        assert (layout.prediction_dtype, layout.n_classes, layout.classes) == (
            np.dtype(np.int64),
            2,
            (0, 1),
        )
        assert pool.get("cancer").ready().version.warmup_ms > 0


async def test_a_moved_alias_is_served_after_a_refresh_while_old_requests_finish(
    store_registry: Registry, store_endpoints: EndpointService
) -> None:
    async with running_pool(store_registry, store_endpoints) as pool:
        before = pool.get("toy").ready()
        store_registry.set_alias("toy", "production", 2)

        await pool.refresh()

        assert pool.get("toy").ready().version.ref == "toy/2"
        assert await predict(pool, "toy", toy(1.0)) == [3.0]
        assert (await before.predict(toy(1.0))).prediction.predictions.tolist() == [2.0]


async def test_endpoints_created_and_deleted_appear_and_disappear_on_refresh(
    store_registry: Registry, store_endpoints: EndpointService
) -> None:
    async with running_pool(store_registry, store_endpoints) as pool:
        store_endpoints.create("toy-two", model="toy/2")
        store_endpoints.delete("iris")

        await pool.refresh()

        assert pool.get("toy-two").ready().version.ref == "toy/2"
        with pytest.raises(EndpointNotFoundError, match="No endpoint named 'iris'"):
            pool.get("iris")


async def test_a_settings_change_keeps_the_loaded_model(
    store_registry: Registry, store_endpoints: EndpointService
) -> None:
    async with running_pool(store_registry, store_endpoints) as pool:
        before = pool.get("toy").ready()
        store_endpoints.update("toy", timeout_ms=123.0, max_batch_size=4)

        await pool.refresh()
        after = pool.get("toy").ready()

        assert after is not before
        assert after.version is before.version
        assert after.timeout_ms == 123.0


async def test_endpoints_on_the_same_version_share_one_loaded_model(
    store_registry: Registry, store_endpoints: EndpointService
) -> None:
    store_endpoints.create("toy-pinned", model="toy/1")
    async with running_pool(store_registry, store_endpoints) as pool:
        assert pool.get("toy-pinned").ready().version is pool.get("toy").ready().version


async def test_a_version_that_cannot_load_leaves_the_previous_one_serving(
    store_registry: Registry, store_endpoints: EndpointService
) -> None:
    async with running_pool(store_registry, store_endpoints) as pool:
        store_registry.set_alias("toy", "production", 3)

        await pool.refresh()
        runtime = pool.get("toy")

        assert runtime.ready().version.ref == "toy/1"
        assert runtime.error is not None
        assert "toy/3 has no signature" in runtime.error


async def test_an_endpoint_that_never_loaded_says_why_it_is_not_ready(
    store_registry: Registry, store_endpoints: EndpointService
) -> None:
    store_endpoints.create("unsigned", model="toy/3")
    async with running_pool(store_registry, store_endpoints) as pool:
        with pytest.raises(EndpointNotReadyError, match=r"loading toy/3 failed.*no signature") as e:
            pool.get("unsigned").ready()

        assert e.value.retry_after == 30
        assert not pool.is_ready


def test_an_endpoint_still_loading_asks_to_retry_soon() -> None:
    spec = type("Spec", (), {"name": "churn", "model": "churn@production"})()
    runtime = EndpointRuntime(spec=spec, executor=DaemonThreadExecutor(max_workers=1))

    with pytest.raises(EndpointNotReadyError, match=r"'churn' is not ready.*is loading") as caught:
        runtime.ready()
    assert caught.value.retry_after == 1


@pytest.mark.parametrize(
    "batching",
    [{}, {"max_batch_size": 4, "max_latency_ms": 1.0}],
    ids=["unbatched", "micro-batched"],
)
async def test_a_prediction_over_the_timeout_fails_and_the_endpoint_keeps_serving(
    store_registry: Registry, store_endpoints: EndpointService, batching: dict[str, float]
) -> None:
    store_endpoints.update("toy", timeout_ms=100.0, **batching)
    async with running_pool(store_registry, store_endpoints, model_threads=2) as pool:
        with pytest.raises(PredictionTimeoutError, match="timeout of 100 ms"):
            await predict(pool, "toy", toy(1.0, delay=2.0))

        assert await predict(pool, "toy", toy(2.0)) == [4.0]


async def test_micro_batched_all_float_array_models_leave_validation_to_the_batcher(
    store_registry: Registry, store_endpoints: EndpointService
) -> None:
    store_endpoints.update("cancer", max_batch_size=8, max_latency_ms=1.0)
    store_endpoints.update("toy", max_batch_size=8, max_latency_ms=1.0)
    async with running_pool(store_registry, store_endpoints) as pool:
        cancer = pool.get("cancer").ready()
        # toy's Python model takes a DataFrame; mixed has non-float columns; iris is unbatched.
        others = [pool.get(name).ready() for name in ("toy", "mixed", "iris")]
        rows = CANCER.head(3).to_dict("records")
        deferred = await asyncio.wait_for(cancer.run_decoded(rows), WAIT)
        upfront = await asyncio.wait_for(cancer.run(cancer.schema.validate(rows)), WAIT)
        with pytest.raises(SchemaValidationError, match=r"row 1"):
            await asyncio.wait_for(
                cancer.run_decoded([rows[0], {**rows[1], "mean radius": "x"}]), WAIT
            )

    assert cancer.defers_validation and not any(d.defers_validation for d in others)
    assert isinstance(deferred.inputs, np.ndarray)
    np.testing.assert_array_equal(deferred.inputs, upfront.inputs)
    np.testing.assert_array_equal(deferred.prediction.predictions, upfront.prediction.predictions)


async def test_a_cancelled_request_stays_cancelled_not_timed_out(
    store_registry: Registry, store_endpoints: EndpointService
) -> None:
    store_endpoints.update("toy", timeout_ms=60_000.0)
    async with running_pool(store_registry, store_endpoints, model_threads=2) as pool:
        waiting = asyncio.ensure_future(predict(pool, "toy", toy(1.0, delay=2.0)))
        await asyncio.sleep(0.2)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

        assert await predict(pool, "toy", toy(2.0)) == [4.0]


async def test_micro_batched_endpoints_answer_each_request_with_its_rows(
    store_registry: Registry, store_endpoints: EndpointService
) -> None:
    store_endpoints.update("toy", max_batch_size=16, max_latency_ms=5.0)
    async with running_pool(store_registry, store_endpoints) as pool:
        results = await asyncio.wait_for(
            asyncio.gather(*(predict(pool, "toy", toy(float(i))) for i in range(40))), WAIT
        )

    assert results == [[2.0 * i] for i in range(40)]


async def test_the_background_task_follows_an_alias_within_a_few_polls(
    store_registry: Registry, store_endpoints: EndpointService
) -> None:
    async with running_pool(store_registry, store_endpoints, refresh_seconds=0.05) as pool:
        store_registry.set_alias("toy", "production", 2)

        for _ in range(400):  # at most 20 s
            if pool.get("toy").ready().version.ref == "toy/2":
                break
            await asyncio.sleep(0.05)

        assert pool.get("toy").ready().version.ref == "toy/2"


async def test_the_pool_follows_an_alias_on_each_metadata_backend(
    make_settings: Callable[..., Settings], tmp_path: Any
) -> None:
    from ferryman.signature import infer_signature

    X = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0.0, 1.0, 0.5]})
    y = np.array([0, 1, 0])
    from sklearn.tree import DecisionTreeClassifier

    with Registry.from_settings(make_settings()) as registry:
        for depth in (1, 2):
            model = DecisionTreeClassifier(max_depth=depth, random_state=0).fit(X, y)
            registry.register(model, name="tree", X=X, y=y, signature=infer_signature(X, y))
        registry.set_alias("tree", "live", 1)
        endpoints = EndpointService(database=registry.database, user="alice")
        endpoints.create("tree", model="tree@live")
        async with running_pool(registry, endpoints) as pool:
            registry.set_alias("tree", "live", 2)
            await pool.refresh()

            assert pool.get("tree").ready().version.ref == "tree/2"


class FlakySource:
    """An endpoint source whose store can be made unreachable."""

    def __init__(self, endpoints: EndpointService) -> None:
        self.endpoints = endpoints
        self.down = False

    def list(self) -> list[Any]:
        return list(self.endpoints.list())

    def change_marker(self) -> int:
        if self.down:
            raise StoreUnavailableError("Cannot reach the metadata store")
        return self.endpoints.change_marker()


async def test_a_store_outage_keeps_the_current_deployments_serving(
    store_registry: Registry, store_endpoints: EndpointService
) -> None:
    source = FlakySource(store_endpoints)
    async with running_pool(store_registry, source) as pool:
        source.down = True

        with pytest.raises(StoreUnavailableError):
            await pool.refresh()

        assert await predict(pool, "toy", toy(1.0)) == [2.0]


async def test_a_model_that_takes_arrays_gets_validated_arrays_and_the_same_answers(
    store_registry: Registry, store_endpoints: EndpointService
) -> None:
    from sklearn.datasets import load_breast_cancer

    rows = load_breast_cancer(as_frame=True).data.iloc[:7]
    async with running_pool(store_registry, store_endpoints) as pool:
        cancer, mixed = pool.get("cancer").ready(), pool.get("mixed").ready()
        validated = cancer.validate(DecodedBatch(rows.to_numpy()))
        from_array = (await cancer.predict(DecodedBatch(rows.to_numpy()))).prediction
        from_records = (
            await cancer.predict(DecodedBatch(rows.to_dict(orient="records")))
        ).prediction

    assert cancer.schema.as_array and not mixed.schema.as_array  # python code: DataFrames
    # scikit-learn's calls are pure computation and may run inline; python code's never.
    assert isinstance(cancer.runner, DirectRunner) and isinstance(mixed.runner, DirectRunner)
    assert cancer.runner.inline_ms > 0 and mixed.runner.inline_ms == 0
    assert isinstance(validated, np.ndarray) and validated.shape == (7, 30)
    np.testing.assert_array_equal(from_array.predictions, from_records.predictions)
    np.testing.assert_array_equal(from_array.probabilities, from_records.probabilities)
