"""The runtime pool: every endpoint's loaded, warmed-up model, kept current without restarts.

At start the pool lists the endpoints from the metadata store, then loads each one's model
version (:meth:`Registry.load`), warms it up with one prediction on a typical row, and
marks the endpoint ready. A background task then polls the store every
``refresh_seconds``: a cheap change marker tells whether endpoints were created, changed
or deleted, and references that follow an alias (``churn@production``) or the latest
version (``churn``) are resolved again. A new version is loaded and warmed up off the
event loop while the old one keeps serving, then swapped in with one assignment, so an
alias move costs no request. Every server process runs its own pool over the same store,
so all of them converge within about one polling interval.

Each endpoint has its own model threads, so a slow or stuck model holds up only its own
endpoint; a request that outlives the endpoint's timeout fails with
:class:`~ferryman.errors.PredictionTimeoutError` while the call finishes unobserved.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, Protocol, TypeVar

from ferryman.errors import (
    ConfigurationError,
    EndpointNotFoundError,
    EndpointNotReadyError,
    PredictionTimeoutError,
)
from ferryman.flavors.base import ModelInput
from ferryman.registry import Model, ModelRef, Registry, VersionInfo
from ferryman.rollout.base import RolloutView, RoutingKey, Strategy
from ferryman.rollout.router import Router
from ferryman.serving._threads import DaemonThreadExecutor
from ferryman.serving._warmup import sample_row
from ferryman.serving.batching import DirectRunner, MicroBatcher, Runner, TimedPrediction
from ferryman.serving.codecs.base import DecodedBatch, InputSchema, OutputLayout
from ferryman.signature import Signature

logger = logging.getLogger("ferryman.serving")

_T = TypeVar("_T")

#: Seconds before a version that failed to load is tried again (unless its reference moves).
RETRY_FAILED_LOAD_SECONDS = 30.0

#: Longest average call (milliseconds) of a bounded-computation model run on the event
#: loop rather than on a model thread (see :class:`~ferryman.serving.batching.DirectRunner`).
INLINE_MS = 0.5

#: The same for a micro-batched endpoint's merged calls (see
#: :class:`~ferryman.serving.batching.MicroBatcher`): longer, since one call serves a
#: whole batch and the hand-over to a thread would cost every member the wait.
BATCH_INLINE_MS = 2.0


class EndpointSpec(Protocol):
    """What the pool needs of an endpoint's configuration (``EndpointConfig`` has it)."""

    @property
    def name(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def max_batch_size(self) -> int: ...
    @property
    def max_latency_ms(self) -> float: ...
    @property
    def timeout_ms(self) -> float: ...
    @property
    def unknown_columns(self) -> Literal["reject", "ignore"]: ...
    @property
    def passthrough(self) -> Sequence[str]: ...


class RolloutSource(Protocol):
    """Where active rollouts come from (``RolloutService`` is one)."""

    def views(self) -> Mapping[str, RolloutView]:
        """Return each endpoint's active rollout, by endpoint name."""
        ...


class EndpointSource(Protocol):
    """Where endpoints come from (``EndpointService`` is one)."""

    def list(self) -> Sequence[EndpointSpec]:
        """Return every endpoint."""
        ...

    def change_marker(self) -> int:
        """Return a value that changes whenever any endpoint changes."""
        ...


@dataclass(frozen=True, eq=False)
class LoadedVersion:
    """A model version loaded and warmed up, shared by every endpoint that serves it.

    Attributes:
        model: The loaded model.
        signature: Its signature.
        layout: Its outputs, as seen in the warm-up prediction.
        warmup_ms: Milliseconds the warm-up prediction took.
        load_seconds: Seconds loading and warming it up took.
    """

    model: Model
    signature: Signature
    layout: OutputLayout
    warmup_ms: float
    load_seconds: float = 0.0

    @property
    def info(self) -> VersionInfo:
        """The version's registry record."""
        return self.model.info

    @cached_property
    def ref(self) -> str:
        """The canonical reference, ``name/N``."""
        return self.model.info.ref


class Deployment:
    """One endpoint serving one loaded version with one configuration; never changes.

    The pool replaces an endpoint's deployment as a whole, so a request that started on
    one version finishes on it.

    Args:
        spec: The endpoint's configuration.
        version: The version it serves.
        executor: The endpoint's model threads.
        model_threads: Number of those threads; micro-batches in flight at once.
        clock: Seconds from a monotonic clock, for timings.
    """

    def __init__(
        self,
        *,
        spec: EndpointSpec,
        version: LoadedVersion,
        executor: Executor,
        model_threads: int,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.spec = spec
        self.version = version
        self.executor = executor
        self.name = spec.name
        self.timeout_ms = spec.timeout_ms
        model = version.model.model
        takes_array = getattr(model, "takes_array", None)
        self.schema = InputSchema(
            version.signature,
            unknown_columns=spec.unknown_columns,
            passthrough=frozenset(spec.passthrough),
            # A model that would turn a DataFrame straight into an array gets the array.
            as_array=bool(takes_array(version.signature.column_names))
            if callable(takes_array) and version.signature.kind == "table"
            else False,
        )
        predict = model.predict
        # Models of bounded pure computation (scikit-learn's) may run inline when their
        # calls are short: see DirectRunner and MicroBatcher.
        bounded = bool(getattr(model, "bounded_compute", False))
        self.runner: Runner
        #: Whether :meth:`run_decoded` leaves validation to the batcher (see batching).
        self.defers_validation = (
            spec.max_batch_size > 1 and self.schema.float_only and self.schema.as_array
        )
        if spec.max_batch_size > 1:
            self.runner = MicroBatcher(
                predict=predict,
                executor=executor,
                max_batch_size=spec.max_batch_size,
                max_latency_ms=spec.max_latency_ms,
                max_concurrency=model_threads,
                initial_compute_ms=version.warmup_ms,
                clock=clock,
                inline_ms=BATCH_INLINE_MS if bounded else 0.0,
                timeout_ms=self.timeout_ms,
                timeout_error=self._timeout_error,
                validate=self.schema.validate if self.defers_validation else None,
            )
        else:
            self.runner = DirectRunner(
                predict=predict,
                executor=executor,
                clock=clock,
                inline_ms=INLINE_MS if bounded else 0.0,
            )

    def __repr__(self) -> str:
        return f"<Deployment {self.name} serving {self.version.ref}>"

    def validate(self, batch: DecodedBatch) -> ModelInput:
        """Validate a decoded batch against the served version's signature.

        Raises:
            SchemaValidationError: The rows do not match the signature.
        """
        return self.schema.validate(batch.data)

    async def run(self, data: ModelInput) -> TimedPrediction:
        """Predict on validated rows, within the endpoint's timeout.

        Raises:
            PredictionTimeoutError: The prediction took longer than ``timeout_ms``.
            PredictionError: The model failed.
        """
        runner = self.runner
        future = runner.submit(data)
        if future.done():  # ran inline
            return future.result()
        if isinstance(runner, MicroBatcher):  # it fails expired requests itself
            return await future
        # One timer that cancels the future, rather than an ``asyncio.timeout`` context
        # (an object and the task's cancel bookkeeping) for every queued request.
        expiry = _Expiry(future)
        timer = asyncio.get_running_loop().call_later(self.timeout_ms / 1000.0, expiry)
        try:
            return await future
        except asyncio.CancelledError:
            if not expiry.expired:
                raise  # the request itself was cancelled
            raise self._timeout_error() from None
        finally:
            timer.cancel()

    def _timeout_error(self) -> PredictionTimeoutError:
        return PredictionTimeoutError(
            f"endpoint {self.name!r}: the prediction took longer than the endpoint's "
            f"timeout of {self.timeout_ms:g} ms"
        )

    async def run_decoded(self, rows: Any) -> TimedPrediction:
        """Validate and predict on decoded rows; the rows the model saw are ``inputs``.

        Where the deployment defers validation to its batcher (``defers_validation``)
        and ``rows`` is a non-empty list, the batcher validates them with the rest of
        their batch; otherwise they are validated here first, as :meth:`predict` does.

        Raises:
            SchemaValidationError: The rows do not match the signature.
            PredictionTimeoutError: The prediction took longer than ``timeout_ms``.
            PredictionError: The model failed.
        """
        runner = self.runner
        if self.defers_validation and isinstance(rows, list) and rows:
            assert isinstance(runner, MicroBatcher)
            return await runner.submit(rows, validated=False)
        return await self.run(self.schema.validate(rows))  # the batcher sets ``inputs``

    async def predict(self, batch: DecodedBatch) -> TimedPrediction:
        """Validate a decoded batch, then predict on it (see :meth:`validate`, :meth:`run`)."""
        return await self.run(self.schema.validate(batch.data))


class _Expiry:
    """Cancels a future when called, remembering that it did (an endpoint's timeout)."""

    __slots__ = ("expired", "future")

    def __init__(self, future: asyncio.Future[Any]) -> None:
        self.future = future
        self.expired = False

    def __call__(self) -> None:
        if not self.future.done():
            self.expired = True
            self.future.cancel()


@dataclass(frozen=True, eq=False)
class Split:
    """An endpoint's traffic split during a rollout: who serves, who gets mirrored copies.

    Replaced as a whole (one assignment), so a request never sees half of a change.

    Attributes:
        rollout: The rollout it implements.
        router: Decides per routing key.
        candidate: The candidate's deployment (loaded and warmed up).
        key: Where sticky routing keys come from; ``None`` routes by request id.
        stable: The stable version's deployment when the split was made.
        same_input: Whether the candidate validates requests exactly as ``stable`` does
            (same signature and endpoint settings), so its rows can be reused.
    """

    rollout: RolloutView
    router: Router
    candidate: Deployment
    key: RoutingKey | None
    stable: Deployment | None = None
    same_input: bool = False


class EndpointRuntime:
    """One endpoint in one server process: its configuration, threads and deployments.

    Outside rollouts one deployment serves everything. During a rollout (``split`` is
    set) the candidate has its own deployment on its own model thread, so a slow
    candidate holds up only its own share of requests.

    Args:
        spec: The endpoint's configuration.
        executor: Its model threads.
    """

    def __init__(self, *, spec: EndpointSpec, executor: Executor) -> None:
        self.spec = spec
        self.executor = executor
        self.deployment: Deployment | None = None
        self.error: str | None = None
        self.rollout: RolloutView | None = None
        self.candidate: Deployment | None = None
        self.candidate_executor: Executor | None = None
        self.split: Split | None = None

    def __repr__(self) -> str:
        state = self.deployment.version.ref if self.deployment else self.error or "loading"
        return f"<EndpointRuntime {self.name}: {state}>"

    @property
    def name(self) -> str:
        """The endpoint's name."""
        return self.spec.name

    @property
    def is_ready(self) -> bool:
        """Whether the endpoint can predict."""
        return self.deployment is not None

    def ready(self) -> Deployment:
        """Return the current deployment.

        Raises:
            EndpointNotReadyError: The model is still loading, or failed to load.
        """
        deployment = self.deployment
        if deployment is None:
            if self.error is not None:
                raise EndpointNotReadyError(
                    f"endpoint {self.name!r} is not ready: loading {self.spec.model} failed: "
                    f"{self.error}",
                    retry_after=int(RETRY_FAILED_LOAD_SECONDS),
                )
            raise EndpointNotReadyError(
                f"endpoint {self.name!r} is not ready: its model {self.spec.model} is loading",
                retry_after=1,
            )
        return deployment

    def choose(self, key: str) -> tuple[Deployment, Split | None]:
        """Return the deployment that serves the request with routing key ``key``.

        Also returns the split in force (``None`` outside rollouts), which tells the
        caller whether to mirror the request.

        Raises:
            EndpointNotReadyError: The stable model is still loading, or failed to load.
        """
        split = self.split
        if split is None:
            return self.ready(), None
        if split.router.routes_to_candidate(key):
            return split.candidate, split
        return self.ready(), split


class RuntimePool:
    """Every endpoint's runtime in this process, kept in step with the metadata store.

    Args:
        registry: The model registry, to resolve references and load versions.
        endpoints: Where endpoints come from, e.g. an ``EndpointService``.
        model_threads: Threads per endpoint for model calls.
        refresh_seconds: Seconds between polls of the store.
        clock: Seconds from a monotonic clock, for timings; injectable for tests.
        on_load: Called as ``on_load(endpoint, version_ref, load_seconds)`` when an
            endpoint starts serving a version (e.g. to record the load time in metrics).
        rollouts: Where active rollouts come from; ``None``: no rollouts.
        on_replaced: Called as ``on_replaced(endpoint, rollout_id, downtime_seconds)``
            when a recreate rollout has replaced the stable version in this process.
        on_version: Called as ``on_version(endpoint, loaded_version)`` before a version
            starts serving an endpoint (stable or candidate), e.g. to bind monitoring.
        on_endpoints: Called with every endpoint's configuration whenever they changed,
            before any of them serves with it (e.g. to configure the prediction log).
    """

    def __init__(
        self,
        *,
        registry: Registry,
        endpoints: EndpointSource,
        model_threads: int = 1,
        refresh_seconds: float = 1.0,
        clock: Callable[[], float] = time.perf_counter,
        on_load: Callable[[str, str, float], None] | None = None,
        rollouts: RolloutSource | None = None,
        on_replaced: Callable[[str, int, float], None] | None = None,
        on_version: Callable[[str, LoadedVersion], None] | None = None,
        on_endpoints: Callable[[Sequence[EndpointSpec]], None] | None = None,
    ) -> None:
        self.registry = registry
        self.endpoints = endpoints
        self.rollouts = rollouts
        self.on_replaced = on_replaced
        self.on_version = on_version
        self.on_endpoints = on_endpoints
        self.model_threads = model_threads
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        self.on_load = on_load
        self._runtimes: dict[str, EndpointRuntime] = {}
        self._versions: dict[str, LoadedVersion] = {}
        self._failures: dict[str, float] = {}
        self._marker: int | None = None
        self._control: DaemonThreadExecutor | None = None
        self._task: asyncio.Task[None] | None = None
        self._refreshing = asyncio.Lock()
        self._loaded = asyncio.Event()
        self._retired: builtins.list[Executor] = []
        self._refresh_error: str | None = None

    def __repr__(self) -> str:
        return (
            f"RuntimePool(model_threads={self.model_threads}, "
            f"refresh_seconds={self.refresh_seconds})"
        )

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """List the endpoints, then load them and keep polling in the background.

        Returns once the endpoints are known (each one answers "loading" until its model
        is ready); :meth:`wait_loaded` waits for the first loading pass.

        Raises:
            StoreUnavailableError: The metadata store cannot be reached.
        """
        if self._control is not None:
            return
        self._control = DaemonThreadExecutor(max_workers=1, name="ferryman-control")
        async with self._refreshing:
            await self._sync_endpoints()
        self._task = asyncio.create_task(self._poll(), name="ferryman-runtime-pool")

    async def stop(self) -> None:
        """Stop polling and release the model threads (running calls finish unobserved)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for runtime in self._runtimes.values():
            runtime.executor.shutdown(wait=False, cancel_futures=True)
            if runtime.candidate_executor is not None:
                runtime.candidate_executor.shutdown(wait=False, cancel_futures=True)
        for executor in self._retired:
            executor.shutdown(wait=False, cancel_futures=True)
        self._runtimes.clear()
        self._versions.clear()
        if self._control is not None:
            self._control.shutdown(wait=False, cancel_futures=True)
            self._control = None

    async def wait_loaded(self) -> None:
        """Wait until the first loading pass after :meth:`start` has finished."""
        await self._loaded.wait()

    # -- lookups (hot path: no I/O) -------------------------------------------------------

    def get(self, name: str) -> EndpointRuntime:
        """Return the endpoint called ``name``.

        Raises:
            EndpointNotFoundError: No such endpoint (in this process's latest view).
        """
        runtime = self._runtimes.get(name)
        if runtime is None:
            raise EndpointNotFoundError(
                f"No endpoint named {name!r}. List endpoints with: ferryman endpoints list"
            )
        return runtime

    def find(self, name: str) -> EndpointRuntime | None:
        """Return the endpoint called ``name``, or ``None``."""
        return self._runtimes.get(name)

    def list(self) -> builtins.list[EndpointRuntime]:
        """Every endpoint, sorted by name."""
        return [self._runtimes[name] for name in sorted(self._runtimes)]

    @property
    def is_ready(self) -> bool:
        """Whether the first loading pass is done and every endpoint can predict."""
        return self._loaded.is_set() and all(r.is_ready for r in self._runtimes.values())

    # -- keeping current -----------------------------------------------------------------

    async def refresh(self) -> None:
        """Apply endpoint changes, rollouts and alias moves now: load, warm up and swap.

        The background task calls this every ``refresh_seconds``; tests call it directly.

        Raises:
            StoreUnavailableError: The metadata store cannot be reached.
        """
        async with self._refreshing:
            await self._sync_endpoints()
            wanted: builtins.list[tuple[str, str, str]] = []
            for runtime in self._runtimes.values():
                for slot, ref in _targets(runtime):
                    if self._needs_resolution(runtime, slot, ref):
                        wanted.append((runtime.name, slot, ref))
            if wanted:
                resolved = await self._in_control(self._resolve, wanted)
                for (name, slot), outcome in resolved.items():
                    found = self._runtimes.get(name)
                    if found is None:
                        continue
                    if slot == "primary":
                        await self._bring_up_to_date(found, outcome)
                    else:
                        await self._bring_candidate_up_to_date(found, outcome)
            for runtime in self._runtimes.values():
                self._update_split(runtime)
            self._forget_unused_versions()

    def _needs_resolution(self, runtime: EndpointRuntime, slot: str, ref: str) -> bool:
        deployment = runtime.deployment if slot == "primary" else runtime.candidate
        if deployment is None or deployment.spec != runtime.spec:
            return True
        if slot == "candidate" and deployment.executor is not self._candidate_executor(runtime):
            return True
        parsed = ModelRef.parse(ref)
        if parsed.version is None:  # follows an alias or the latest version
            return True
        return deployment.version.ref != str(parsed)

    async def _poll(self) -> None:
        try:
            await self._refresh_logged()
        finally:
            self._loaded.set()
        while True:
            await asyncio.sleep(self.refresh_seconds)
            await self._refresh_logged()

    async def _refresh_logged(self) -> None:
        try:
            await self.refresh()
        except Exception as exc:
            # Once per distinct failure, not once per poll while the store is down.
            message = f"{type(exc).__name__}: {exc}"
            if message != self._refresh_error:
                logger.exception("Refreshing endpoints failed; keeping the current ones")
            self._refresh_error = message
        else:
            if self._refresh_error is not None:
                logger.info("Refreshing endpoints works again")
            self._refresh_error = None

    async def _sync_endpoints(self) -> None:
        marker = await self._in_control(self.endpoints.change_marker)
        if marker == self._marker:
            return
        specs = await self._in_control(self.endpoints.list)
        views: Mapping[str, RolloutView] = {}
        if self.rollouts is not None:
            views = await self._in_control(self.rollouts.views)
        current = {spec.name: spec for spec in specs}
        if self.on_endpoints is not None:
            self.on_endpoints(specs)
        for name in [name for name in self._runtimes if name not in current]:
            self._retire(self._runtimes.pop(name))
        for name, spec in current.items():
            runtime = self._runtimes.get(name)
            if runtime is None:
                executor = DaemonThreadExecutor(
                    max_workers=self.model_threads, name=f"ferryman-model-{name}"
                )
                self._runtimes[name] = EndpointRuntime(spec=spec, executor=executor)
            else:
                runtime.spec = spec
            self._runtimes[name].rollout = views.get(name)
        self._marker = marker

    def _retire(self, runtime: EndpointRuntime) -> None:
        logger.info("Endpoint %r was deleted; it no longer takes requests", runtime.name)
        self._retired.append(runtime.executor)
        if runtime.candidate_executor is not None:
            self._retired.append(runtime.candidate_executor)
            asyncio.get_running_loop().call_later(
                runtime.spec.timeout_ms / 1000.0 + 1.0, self._shut_down, runtime.candidate_executor
            )
        # Requests that already hold its deployment finish within their timeout.
        grace = runtime.spec.timeout_ms / 1000.0 + 1.0
        asyncio.get_running_loop().call_later(grace, self._shut_down, runtime.executor)

    def _shut_down(self, executor: Executor) -> None:
        executor.shutdown(wait=False)
        if executor in self._retired:
            self._retired.remove(executor)

    def _resolve(
        self, wanted: builtins.list[tuple[str, str, str]]
    ) -> dict[tuple[str, str], VersionInfo | Exception]:
        resolved: dict[tuple[str, str], VersionInfo | Exception] = {}
        for name, slot, ref in wanted:
            try:
                resolved[(name, slot)] = self.registry.get_version(ref)
            except Exception as exc:  # reported per endpoint; the others go on
                resolved[(name, slot)] = exc
        return resolved

    async def _bring_up_to_date(
        self, runtime: EndpointRuntime, outcome: VersionInfo | Exception
    ) -> None:
        if isinstance(outcome, Exception):
            self._note_failure(runtime, f"{type(outcome).__name__}: {outcome}")
            return
        rollout = runtime.rollout
        replacing = (
            rollout is not None
            and rollout.replaces_in_place
            and runtime.deployment is not None
            and runtime.deployment.version.ref != outcome.ref
        )
        unloaded_at = 0.0
        if replacing:
            # Recreate: no second copy in memory; requests meanwhile get 503 + Retry-After.
            unloaded_at = self.clock()
            old = runtime.deployment
            runtime.deployment = None
            runtime.error = None
            assert old is not None
            logger.info("Endpoint %r: unloading %s to recreate it", runtime.name, old.version.ref)
            self._forget_unused_versions()
        version = await self._loaded_version(runtime, outcome)
        if version is None:
            return
        current = runtime.deployment
        if current is not None and current.version is version and current.spec == runtime.spec:
            return
        self._announce(runtime, version)
        runtime.deployment = Deployment(
            spec=runtime.spec,
            version=version,
            executor=runtime.executor,
            model_threads=self.model_threads,
            clock=self.clock,
        )
        runtime.error = None
        if replacing and rollout is not None and self.on_replaced is not None:
            downtime = self.clock() - unloaded_at
            logger.info(
                "Endpoint %r recreated on %s; downtime %.3f s", runtime.name, version.ref, downtime
            )
            self.on_replaced(runtime.name, rollout.id, downtime)
        if current is None or current.version is not version:
            logger.info("Endpoint %r now serves %s", runtime.name, version.ref)
            if self.on_load is not None:
                self.on_load(runtime.name, version.ref, version.load_seconds)

    async def _bring_candidate_up_to_date(
        self, runtime: EndpointRuntime, outcome: VersionInfo | Exception
    ) -> None:
        if isinstance(outcome, Exception):
            logger.warning("Endpoint %r: candidate unavailable: %s", runtime.name, outcome)
            return
        version = await self._loaded_version(runtime, outcome)
        if version is None:
            return
        executor = self._candidate_executor(runtime)
        current = runtime.candidate
        if (
            current is not None
            and current.version is version
            and current.spec == runtime.spec
            and current.executor is executor
        ):
            return
        self._announce(runtime, version)
        runtime.candidate = Deployment(
            spec=runtime.spec,
            version=version,
            executor=executor,
            model_threads=self.model_threads,
            clock=self.clock,
        )
        logger.info(
            "Endpoint %r: candidate %s loaded beside the stable version", runtime.name, version.ref
        )
        if self.on_load is not None:
            self.on_load(runtime.name, version.ref, version.load_seconds)

    def _candidate_executor(self, runtime: EndpointRuntime) -> Executor:
        """A shadow candidate gets threads of its own, so a slow one never delays callers.

        Candidates that answer callers (canary, A/B, blue-green) share the endpoint's
        threads: a second thread per endpoint measurably costs throughput (context
        switches, GIL hand-offs), and such a candidate's slowness is what its gates are
        for.
        """
        rollout = runtime.rollout
        if rollout is None or rollout.strategy is not Strategy.SHADOW:
            return runtime.executor
        if runtime.candidate_executor is None:
            runtime.candidate_executor = DaemonThreadExecutor(
                max_workers=self.model_threads, name=f"ferryman-candidate-{runtime.name}"
            )
        return runtime.candidate_executor

    def _announce(self, runtime: EndpointRuntime, version: LoadedVersion) -> None:
        if self.on_version is not None:
            try:
                self.on_version(runtime.name, version)
            except Exception:  # monitoring must never keep a model from serving
                logger.exception("on_version failed for %s on %r", version.ref, runtime.name)

    def _update_split(self, runtime: EndpointRuntime) -> None:
        """Route by the rollout once its candidate is loaded; drop the candidate after it."""
        rollout = runtime.rollout
        candidate = runtime.candidate
        if rollout is None or rollout.replaces_in_place:
            runtime.split = None
            if candidate is not None:
                runtime.candidate = None
            return
        if candidate is None or candidate.version.ref != rollout.candidate:
            runtime.split = None  # all traffic on the stable version until it is warm
            return
        split = runtime.split
        stable = runtime.deployment
        if (
            split is not None
            and split.rollout == rollout
            and split.candidate is candidate
            and split.stable is stable
        ):
            return
        runtime.split = Split(
            rollout=rollout,
            router=Router(weight=rollout.weight, salt=rollout.salt, mirror=rollout.mirror),
            candidate=candidate,
            key=rollout.key,
            stable=stable,
            # Same signature, endpoint settings and input layout: the stable version's
            # validated rows are the candidate's too (shadow copies reuse them, and can
            # share calls).
            same_input=stable is not None
            and stable.spec == candidate.spec
            and stable.version.signature == candidate.version.signature
            and stable.schema.as_array == candidate.schema.as_array,
        )

    async def _loaded_version(
        self, runtime: EndpointRuntime, outcome: VersionInfo
    ) -> LoadedVersion | None:
        """The loaded version ``outcome``, loading and warming it up if needed."""
        version = self._versions.get(outcome.ref)
        if version is None:
            failed_at = self._failures.get(outcome.ref)
            if failed_at is not None and self.clock() - failed_at < RETRY_FAILED_LOAD_SECONDS:
                return None
            try:
                version = await self._in_control(self._load, outcome)
            except Exception as exc:
                self._failures[outcome.ref] = self.clock()
                logger.exception("Loading %s for endpoint %r failed", outcome.ref, runtime.name)
                self._note_failure(runtime, f"{type(exc).__name__}: {exc}")
                return None
            self._failures.pop(outcome.ref, None)
            self._versions[outcome.ref] = version
        return version

    def _note_failure(self, runtime: EndpointRuntime, message: str) -> None:
        if runtime.deployment is None:
            runtime.error = message
        elif runtime.error != message:
            logger.warning(
                "Endpoint %r keeps serving %s: %s",
                runtime.name,
                runtime.deployment.version.ref,
                message,
            )
            runtime.error = message

    def _load(self, info: VersionInfo) -> LoadedVersion:
        loading = self.clock()
        model = self.registry.load(info)
        signature = model.signature
        if signature is None:
            raise ConfigurationError(
                f"Version {info.ref} has no signature, so requests cannot be validated; "
                "register it with training data (X=...) to serve it"
            )
        rows = signature.validate([sample_row(signature, info.profile)])
        start = self.clock()
        prediction = model.model.predict(rows)
        warmup_ms = (self.clock() - start) * 1000.0
        layout = OutputLayout.from_prediction(prediction)
        logger.info("Loaded %s (%s), warm-up %.1f ms", info.ref, info.flavor, warmup_ms)
        return LoadedVersion(model, signature, layout, warmup_ms, self.clock() - loading)

    def _forget_unused_versions(self) -> None:
        used = {r.deployment.version.ref for r in self._runtimes.values() if r.deployment}
        used |= {r.candidate.version.ref for r in self._runtimes.values() if r.candidate}
        for ref in [ref for ref in self._versions if ref not in used]:
            del self._versions[ref]

    async def _in_control(self, function: Callable[..., _T], *args: object) -> _T:
        if self._control is None:
            raise RuntimeError("RuntimePool.start() must be called first")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._control, function, *args)


def _targets(runtime: EndpointRuntime) -> builtins.list[tuple[str, str]]:
    """The versions an endpoint should have loaded: ``(slot, reference)`` pairs."""
    rollout = runtime.rollout
    if rollout is None:
        return [("primary", runtime.spec.model)]
    if rollout.replaces_in_place:
        return [("primary", rollout.candidate)]
    return [("primary", rollout.stable), ("candidate", rollout.candidate)]
