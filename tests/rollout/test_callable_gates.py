"""Gates named by import path (``python:MODULE:ATTRIBUTE``): checked at creation, imported
and called at evaluation, their outcome kept as evidence, through the controller too; only
modules under the prefixes of the ``gate_modules`` setting (``FERRYMAN_GATE_MODULES``)."""

from __future__ import annotations

import asyncio
import importlib
import logging
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.linear_model import LogisticRegression

from ferryman.config import Settings
from ferryman.errors import InvalidInputError
from ferryman.monitoring.base import METRIC_CATALOGUE, Measurement, WindowSelector
from ferryman.registry import Registry
from ferryman.rollout import Gate, GateMeasurements, GateOutcome, GateResult, GateSet
from ferryman.rollout.base import Phase, RolloutOptions
from ferryman.rollout.controller import RolloutController
from ferryman.rollout.service import RolloutService
from ferryman.serving import EndpointService

CHECKS = "python:tests.rollout.gate_checks"
LATENCY_OK = f"{CHECKS}:latency_ok"
WITH_EVIDENCE = f"{CHECKS}:latency_with_evidence"

#: The gate_modules setting of these tests: their own helper package, and the modules
#: tests write to a temporary directory.
ALLOWED = ("tests.rollout", "crashing_checks", "vanishing_checks", "recording_checks")

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
CANDIDATE = WindowSelector.last("churn", timedelta(minutes=5), now=NOW, version="churn/2")


class VersionSource:
    """A MetricSource answering by (metric, version); anything else has no data."""

    def __init__(self, values: Mapping[tuple[str, str], Measurement]) -> None:
        self.values = dict(values)

    def measure(
        self, metric: str, labels: Mapping[str, str], selector: WindowSelector
    ) -> Measurement:
        return self.values.get((metric, selector.version or ""), Measurement(None, 0))

    def metric_names(self) -> Sequence[str]:
        return sorted(METRIC_CATALOGUE)


def candidate_latency(ms: float | None, requests: int = 500) -> VersionSource:
    return VersionSource(
        {
            ("request_count", "churn/2"): Measurement(float(requests), requests),
            ("p99_latency_ms", "churn/2"): Measurement(ms, requests if ms is not None else 0),
            ("error_rate", "churn/2"): Measurement(0.001, requests),
        }
    )


# -- building and evaluating ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("latency", "status"), [(150.0, "pass"), (250.0, "fail")], ids=["below", "above"]
)
def test_a_referenced_function_decides_the_gate(latency: float, status: str) -> None:
    gate = Gate.from_reference(LATENCY_OK, allowed_modules=ALLOWED)

    result = gate.evaluate(candidate_latency(latency), CANDIDATE)

    assert result == GateResult(
        gate=LATENCY_OK,
        status=status,  # type: ignore[arg-type]
        observed=None,
        threshold=None,
        samples=500,
        min_samples=100,
        reason=f"the gate returned {status}",
    )


def test_an_outcome_puts_its_value_threshold_and_reason_in_the_evidence() -> None:
    result = Gate.from_reference(WITH_EVIDENCE, allowed_modules=ALLOWED).evaluate(
        candidate_latency(250.0), CANDIDATE
    )

    assert result.to_dict() == {
        "gate": WITH_EVIDENCE,
        "status": "fail",
        "observed": 250.0,
        "threshold": 200.0,
        "samples": 500,
        "min_samples": 100,
        "reason": "p99 latency 250 ms against a limit of 200 ms",
        "expression": None,
        "stable": None,
    }


def test_a_pass_built_on_a_measurement_without_data_is_inconclusive() -> None:
    def reads_nothing(m: GateMeasurements) -> GateOutcome:
        m.candidate("p99_latency_ms")
        return GateOutcome(True, observed=1.0, threshold=2.0)

    result = Gate.from_callable("g", reads_nothing).evaluate(candidate_latency(None), CANDIDATE)

    assert (result.status, result.observed, result.threshold) == ("inconclusive", 1.0, 2.0)
    assert "read p99_latency_ms (candidate), which had no data" in result.reason


def test_a_dotted_attribute_names_a_function_inside_a_class() -> None:
    gate = Gate.from_reference(f"{CHECKS}:Checks.errors_ok", allowed_modules=ALLOWED)

    assert gate.evaluate(candidate_latency(100.0), CANDIDATE).status == "pass"


def test_the_function_runs_only_once_the_window_has_min_samples() -> None:
    result = Gate.from_reference(LATENCY_OK, min_samples=1000, allowed_modules=ALLOWED).evaluate(
        candidate_latency(150.0), CANDIDATE
    )

    assert result.status == "inconclusive"
    assert result.reason == "500 requests in the candidate window; the gate decides from 1000 on"


def test_a_function_that_raises_is_inconclusive_never_a_pass(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="ferryman.rollout"):
        result = Gate.from_reference(f"{CHECKS}:broken", allowed_modules=ALLOWED).evaluate(
            candidate_latency(150.0), CANDIDATE
        )

    assert result.status == "inconclusive"
    assert result.reason == "the gate raised RuntimeError: the latency service is down"
    assert f"Gate '{CHECKS}:broken' raised" in caplog.text


def test_a_gate_set_mixes_expressions_and_references() -> None:
    gates = GateSet(["error_rate < 0.01", f"  {WITH_EVIDENCE} "], allowed_modules=ALLOWED)

    result = gates.evaluate(candidate_latency(150.0), CANDIDATE)

    assert [g.name for g in gates] == ["error_rate < 0.01", WITH_EVIDENCE]
    assert [(r.gate, r.status) for r in result.results] == [
        ("error_rate < 0.01", "pass"),
        (WITH_EVIDENCE, "pass"),
    ]


def test_repr_shows_the_reference_and_the_allowed_modules() -> None:
    gate = Gate.from_reference(LATENCY_OK, min_samples=5, allowed_modules=["tests.rollout"])

    assert repr(gate) == (
        f"Gate.from_reference('{LATENCY_OK}', min_samples=5, allowed_modules=('tests.rollout',))"
    )


# -- mistakes ---------------------------------------------------------------------------------


@pytest.fixture
def importable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory on sys.path for modules a test writes."""
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    return tmp_path


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("python:tests.rollout.gate_checks", r"expected python:MODULE:ATTRIBUTE"),
        ("python:tests/rollout/gate_checks.py:latency_ok", r"expected python:MODULE:ATTRIBUTE"),
        ("python::latency_ok", r"expected python:MODULE:ATTRIBUTE"),
        ("python:os:remove", r"'os' is a standard-library module"),
        (
            "python:tests.rollout.no_such_checks:ok",
            r"cannot import module 'tests.rollout.no_such_checks' \(ModuleNotFoundError: No "
            r"module named 'tests.rollout.no_such_checks'\); install it, or add its directory "
            "to PYTHONPATH",
        ),
        (f"{CHECKS}:latency_okay", r"'tests.rollout.gate_checks' has no attribute 'latency_okay'"),
        (f"{CHECKS}:Checks.nothing", r"'tests.rollout.gate_checks.Checks' has no attribute"),
        (f"{CHECKS}:NOT_A_FUNCTION", r"NOT_A_FUNCTION is a int, not a callable"),
    ],
    ids=[
        "no-attribute",
        "a-path",
        "no-module",
        "stdlib",
        "missing-module",
        "missing-attribute",
        "missing-nested",
        "not-callable",
    ],
)
def test_a_bad_reference_is_refused_naming_what_is_wrong(reference: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        Gate.from_reference(reference, allowed_modules=(*ALLOWED, "os"))


def test_a_module_that_fails_to_import_is_refused_with_its_error(importable: Path) -> None:
    (importable / "crashing_checks.py").write_text("raise ImportError('numpy is too old')\n")

    with pytest.raises(
        InvalidInputError, match=r"cannot import module 'crashing_checks' \(ImportError: numpy"
    ):
        Gate.from_reference("python:crashing_checks:ok", allowed_modules=ALLOWED)


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        ("maybe", r"Gate 'g' returned 'maybe'; expected 'pass'"),
        (GateOutcome, r"Gate 'g' returned <class"),
    ],
    ids=["text", "a-class"],
)
def test_a_function_returning_no_verdict_is_an_error(returned: object, message: str) -> None:
    gate = Gate.from_callable("g", lambda _m: returned)  # type: ignore[arg-type,return-value]

    with pytest.raises(InvalidInputError, match=message):
        gate.evaluate(candidate_latency(1.0), CANDIDATE)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"verdict": "ok"}, r"Invalid GateOutcome verdict 'ok'"),
        ({"verdict": True, "observed": float("nan")}, r"observed is nan; expected a finite"),
        ({"verdict": True, "threshold": "200"}, r"threshold '200' is not a number"),
        ({"verdict": True, "reason": 3}, r"reason 3 is not text"),
    ],
    ids=["verdict", "nan", "text-threshold", "reason"],
)
def test_an_invalid_outcome_is_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        GateOutcome(**kwargs)  # type: ignore[arg-type]


def test_deferring_the_import_still_checks_the_form() -> None:
    with pytest.raises(InvalidInputError, match="expected python:MODULE:ATTRIBUTE"):
        Gate.from_reference("python:not a module:x", import_now=False)


def test_a_function_that_cannot_be_imported_at_evaluation_is_inconclusive(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = Gate.from_reference(
        "python:tests.rollout.gone_checks:ok", import_now=False, allowed_modules=ALLOWED
    )

    with caplog.at_level(logging.ERROR, logger="ferryman.rollout"):
        result = gate.evaluate(candidate_latency(150.0), CANDIDATE)

    assert result.status == "inconclusive"
    assert result.reason.startswith(
        "the gate could not be loaded: Callable gate 'python:tests.rollout.gone_checks:ok': "
        "cannot import module"
    )
    assert "could not be loaded" in caplog.text


# -- allowed modules --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allowed", "listed"),
    [
        ((), "now empty"),
        (("tests.rollout.gate",), "now 'tests.rollout.gate'"),
        (("tests.serving", "my_package"), "now 'tests.serving', 'my_package'"),
    ],
    ids=["none", "a-name-prefix-is-not-a-package", "other-packages"],
)
def test_a_module_outside_the_allowed_prefixes_is_refused_naming_the_setting(
    allowed: tuple[str, ...], listed: str
) -> None:
    with pytest.raises(
        InvalidInputError,
        match=r"module 'tests.rollout.gate_checks' is not allowed; .* \(FERRYMAN_GATE_MODULES, "
        + re.escape(listed)
        + re.escape(
            """). To allow it, set FERRYMAN_GATE_MODULES='["tests.rollout.gate_checks"]'"""
        ),
    ):
        Gate.from_reference(LATENCY_OK, allowed_modules=allowed)


@pytest.mark.parametrize(
    "allowed", ["tests", "tests.rollout", "tests.rollout.gate_checks"], ids=str
)
def test_a_prefix_allows_its_module_and_the_modules_inside_it(allowed: str) -> None:
    gate = Gate.from_reference(LATENCY_OK, allowed_modules=[allowed])

    assert gate.evaluate(candidate_latency(150.0), CANDIDATE).status == "pass"


def test_a_refused_module_is_never_imported(importable: Path) -> None:
    marker = importable / "imported.txt"
    (importable / "sneaky_checks.py").write_text(
        f"open({str(marker)!r}, 'w').close()\ndef ok(m):\n    return True\n"
    )

    with pytest.raises(InvalidInputError, match="'sneaky_checks' is not allowed"):
        Gate.from_reference("python:sneaky_checks:ok", allowed_modules=ALLOWED)

    assert not marker.exists()
    assert "sneaky_checks" not in sys.modules


@pytest.mark.parametrize(
    ("allowed", "message"),
    [
        (["my package"], r"Invalid allowed gate module 'my package': expected a dotted"),
        (["tests."], r"Invalid allowed gate module 'tests\.'"),
        ("tests", r"Invalid allowed gate modules 'tests': expected a list of module prefixes"),
    ],
    ids=["space", "trailing-dot", "a-string"],
)
def test_a_malformed_allowed_module_is_refused(allowed: Sequence[str], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        Gate.from_reference(LATENCY_OK, import_now=False, allowed_modules=allowed)


def test_the_setting_reads_a_json_list_and_refuses_a_malformed_prefix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FERRYMAN_GATE_MODULES", '["my_package.checks", "team"]')

    assert Settings().gate_modules == ["my_package.checks", "team"]
    with pytest.raises(ValidationError, match="gate_modules"):
        Settings(gate_modules=["my_package/checks"])


def test_the_setting_allows_no_module_by_default() -> None:
    assert Settings().gate_modules == []


# -- rollouts ---------------------------------------------------------------------------------


@pytest.fixture
def churn(registry: Registry) -> Registry:
    """The registry with churn/1 (production, served by the churn endpoint) and churn/2."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})
    y = (X["a"] > 0).astype(int)
    for c in (1.0, 0.5):
        registry.register(LogisticRegression(C=c).fit(X, y), name="churn", X=X, y=y)
    registry.set_alias("churn", "production", 1)
    EndpointService(database=registry.database, user="alice").create(
        "churn", model="churn@production"
    )
    return registry


@pytest.fixture
def service(churn: Registry, make_settings: Callable[..., Settings]) -> RolloutService:
    """A rollout service whose gate_modules setting allows :data:`ALLOWED`."""
    settings = make_settings(gate_modules=list(ALLOWED))
    return RolloutService(registry=churn, user="alice", gate_modules=settings.gate_modules)


def test_a_rollout_stores_the_reference_as_text(service: RolloutService) -> None:
    options = RolloutOptions(gates=(LATENCY_OK, "error_rate < 0.01"))

    rollout = service.start("churn", "churn/2", strategy="canary", options=options)

    assert service.get("churn").options.gates == (LATENCY_OK, "error_rate < 0.01")
    assert rollout.options.to_dict()["gates"] == [LATENCY_OK, "error_rate < 0.01"]


def test_a_rollout_with_a_bad_reference_is_refused_at_creation(service: RolloutService) -> None:
    options = RolloutOptions(gates=(f"{CHECKS}:latency_okay",))

    with pytest.raises(InvalidInputError, match="has no attribute 'latency_okay'"):
        service.start("churn", "churn/2", strategy="canary", options=options)
    assert service.find_active("churn") is None


def test_a_rollout_naming_a_module_the_setting_does_not_list_is_refused_at_creation(
    churn: Registry,
) -> None:
    unlisted = RolloutService(registry=churn, user="alice")
    options = RolloutOptions(gates=(LATENCY_OK,))

    with pytest.raises(InvalidInputError, match=r"is not allowed; .*FERRYMAN_GATE_MODULES"):
        unlisted.start("churn", "churn/2", strategy="canary", options=options)
    assert unlisted.find_active("churn") is None


def test_a_server_whose_setting_does_not_list_the_module_counts_the_gate_inconclusive(
    service: RolloutService, churn: Registry
) -> None:
    options = RolloutOptions(gates=(LATENCY_OK,), bake_seconds=60)
    rollout = service.start("churn", "churn/2", strategy="canary", options=options)
    narrower = RolloutService(registry=churn, user="alice", gate_modules=["my_package"])
    controller = RolloutController(service=narrower, metrics=candidate_latency(150.0))

    result = controller.evaluate_gates(rollout, rollout.stage_started_at + timedelta(minutes=2))

    assert result.status == "inconclusive"
    assert result.results[0].reason.startswith(
        f"the gate could not be loaded: Callable gate '{LATENCY_OK}': module "
        "'tests.rollout.gate_checks' is not allowed"
    )


def post_rollout(settings: Settings, gate: str) -> httpx.Response:
    """POST /v1/rollouts to an app built from ``settings``, running in process."""
    from ferryman.server import create_app

    async def post() -> httpx.Response:
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://ferryman") as c:
                body = {"endpoint": "churn", "model": "churn/2", "strategy": "canary"}
                return await c.post("/v1/rollouts", json={**body, "gates": [gate]})

    return asyncio.run(post())


def test_the_server_refuses_an_unlisted_module_with_400_and_starts_a_listed_one(
    churn: Registry, make_settings: Callable[..., Settings]
) -> None:
    refused = post_rollout(make_settings(), LATENCY_OK)
    started = post_rollout(make_settings(gate_modules=["tests.rollout"]), LATENCY_OK)

    assert refused.status_code == 400
    assert "FERRYMAN_GATE_MODULES" in refused.json()["error"]
    assert started.status_code == 201, started.text
    assert started.json()["options"]["gates"] == [LATENCY_OK]


def run_controller(service: RolloutService, source: VersionSource, at: datetime) -> list[str]:
    controller = RolloutController(service=service, metrics=source, clock=lambda: at)
    return [decision.kind for decision in asyncio.run(controller.tick())]


def test_the_controller_advances_a_canary_on_the_functions_outcome(
    service: RolloutService,
) -> None:
    options = RolloutOptions(gates=(WITH_EVIDENCE,), bake_seconds=60)
    rollout = service.start("churn", "churn/2", strategy="canary", options=options)

    kinds = run_controller(
        service, candidate_latency(150.0), rollout.stage_started_at + timedelta(minutes=2)
    )

    assert kinds == ["step"]
    assert service.get("churn").weight == 25.0
    (result,) = service.events(rollout.id)[-1].detail["gates"]["results"]
    assert {k: result[k] for k in ("gate", "status", "observed", "threshold", "reason")} == {
        "gate": WITH_EVIDENCE,
        "status": "pass",
        "observed": 150.0,
        "threshold": 200.0,
        "reason": "p99 latency 150 ms against a limit of 200 ms",
    }


def test_the_controller_rolls_back_when_the_function_keeps_failing(
    service: RolloutService,
) -> None:
    options = RolloutOptions(gates=(WITH_EVIDENCE,), bake_seconds=60, failure_limit=2)
    rollout = service.start("churn", "churn/2", strategy="canary", options=options)
    start = rollout.stage_started_at

    kinds = [
        *run_controller(service, candidate_latency(250.0), start + timedelta(minutes=2)),
        *run_controller(service, candidate_latency(250.0), start + timedelta(minutes=3)),
    ]

    assert kinds == ["gate-failed", "rollback"]
    assert service.get_by_id(rollout.id).phase is Phase.ROLLED_BACK
    last = service.events(rollout.id)[-1]
    assert f"{WITH_EVIDENCE}: 250 against 200" in last.message


def test_the_controller_waits_when_its_process_cannot_import_the_function(
    service: RolloutService, importable: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = importable / "vanishing_checks.py"
    module.write_text("def ok(m):\n    return True\n")
    options = RolloutOptions(gates=("python:vanishing_checks:ok",), bake_seconds=60)
    rollout = service.start("churn", "churn/2", strategy="canary", options=options)
    module.unlink()  # the server's process lacks the module the CLI's process had
    monkeypatch.delitem(sys.modules, "vanishing_checks")
    importlib.invalidate_caches()
    controller = RolloutController(service=service, metrics=candidate_latency(150.0))

    result = controller.evaluate_gates(rollout, rollout.stage_started_at + timedelta(minutes=2))

    assert result.status == "inconclusive"
    assert "could not be loaded" in result.results[0].reason
    assert (
        run_controller(
            service, candidate_latency(150.0), rollout.stage_started_at + timedelta(minutes=2)
        )
        == []
    )


@pytest.fixture
def deploy(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., int]:
    """Runs ``ferryman deploy churn churn/2 --strategy canary ARGS`` on the test's database."""
    from ferryman.cli import main

    monkeypatch.setenv("FERRYMAN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FERRYMAN_DATABASE_URL", database_url)
    monkeypatch.setenv("FERRYMAN_USER", "alice")

    def run(*args: str) -> int:
        return main(["deploy", "churn", "churn/2", "--strategy", "canary", *args])

    return run


def test_the_cli_refuses_a_bad_reference_with_exit_2_and_keeps_a_good_one(
    service: RolloutService,
    deploy: Callable[..., int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FERRYMAN_GATE_MODULES", '["tests.rollout"]')

    refused = deploy("--gate", f"{CHECKS}:NOT_A_FUNCTION")
    refused_err = capsys.readouterr().err
    started = deploy("--gate", LATENCY_OK, "--json")
    capsys.readouterr()

    assert refused == 2
    assert "NOT_A_FUNCTION is a int, not a callable" in refused_err
    assert started == 0
    assert service.get("churn").options.gates == (LATENCY_OK,)


def test_the_cli_refuses_a_module_the_setting_does_not_list_with_exit_2(
    service: RolloutService,
    deploy: Callable[..., int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FERRYMAN_GATE_MODULES", '["my_package"]')

    code = deploy("--gate", LATENCY_OK)

    assert code == 2
    assert "FERRYMAN_GATE_MODULES" in " ".join(capsys.readouterr().err.split())
    assert service.find_active("churn") is None
