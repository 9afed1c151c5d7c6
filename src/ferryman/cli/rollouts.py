"""``ferryman deploy`` and ``ferryman rollout``: change the model behind a live endpoint.

``deploy`` starts a rollout in the metadata store; a running ``ferryman serve`` (its
controller) carries it out. ``rollout status|promote|pause|resume|abort|rollback|history``
look at it and steer it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from ferryman.cli._app import JsonOption, console, emit, fail, open_registry, settings

if TYPE_CHECKING:
    from ferryman.rollout.service import RolloutService

app = typer.Typer(
    help="Steer a rollout: status, promote, pause, resume, abort, rollback, history.",
    no_args_is_help=True,
)

#: Longest ``status --watch`` runs without ``--watch-seconds`` (seconds).
WATCH_LIMIT_SECONDS = 3600.0


@contextmanager
def _service() -> Iterator[RolloutService]:
    from ferryman.rollout.service import RolloutService

    gate_modules = settings().gate_modules
    with open_registry() as registry:
        yield RolloutService(registry=registry, user=registry.user, gate_modules=gate_modules)


def deploy(
    endpoint: str = typer.Argument(..., help="The endpoint to change, e.g. churn."),
    model: str = typer.Argument(..., help="The candidate: churn/4, churn@staging, churn."),
    strategy: str = typer.Option(
        ..., "--strategy", "-s", help="recreate, blue-green, canary, shadow or ab-test."
    ),
    steps: str | None = typer.Option(None, "--steps", help="Canary steps, percent: 10,25,50,100."),
    bake: str | None = typer.Option(None, "--bake", help="Time per step, e.g. 60s, 5m."),
    gate: list[str] | None = typer.Option(
        None, "--gate", help="Gate, repeatable, e.g. 'error_rate < 0.01'."
    ),
    failure_limit: int | None = typer.Option(
        None, "--failure-limit", help="Failed gate evaluations in a step before rollback."
    ),
    manual: bool = typer.Option(False, "--manual", help="Wait for promote before each step."),
    keep_previous: str | None = typer.Option(
        None, "--keep-previous", help="Blue-green: keep blue loaded this long, e.g. 10m."
    ),
    smoke_file: Path | None = typer.Option(
        None, "--smoke-file", help="Blue-green: JSON file of records replayed on green and blue."
    ),
    sample: float | None = typer.Option(
        None, "--sample", help="Shadow: share of requests mirrored, in (0, 1]."
    ),
    then: str | None = typer.Option(
        None, "--then", help="Shadow: after passing gates, 'canary' or 'promote'."
    ),
    key: str | None = typer.Option(
        None, "--key", help="Sticky routing key: header:X-User-Id or field:user_id."
    ),
    weights: str | None = typer.Option(None, "--weights", help="A/B arm weights: 50,50."),
    min_samples: int | None = typer.Option(
        None, "--min-samples", help="Requests a window needs before a gate decides."
    ),
    interval: str | None = typer.Option(None, "--interval", help="Time between gate checks."),
    outcome: str | None = typer.Option(None, "--outcome", help="A/B: binary or numeric."),
    minimum_effect: float | None = typer.Option(
        None, "--minimum-effect", help="A/B: smallest difference of interest (absolute)."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Start changing ENDPOINT to MODEL under a strategy; `ferryman serve` carries it out."""
    from ferryman.rollout.base import RolloutOptions

    values: dict[str, Any] = {
        "steps": _numbers(steps, "--steps") if steps else None,
        "bake_seconds": bake,
        "gates": gate or None,
        "failure_limit": failure_limit,
        "manual": manual,
        "keep_previous_seconds": keep_previous,
        "smoke_rows": _smoke_rows(smoke_file) if smoke_file else None,
        "sample": sample,
        "then": then,
        "key": key,
        "weights": _numbers(weights, "--weights") if weights else None,
        "min_samples": min_samples,
        "interval_seconds": interval,
        "outcome": outcome,
        "minimum_effect": minimum_effect,
    }
    options = RolloutOptions.from_dict({k: v for k, v in values.items() if v is not None})
    with _service() as service:
        rollout = service.start(endpoint, model, strategy=strategy, options=options)
    emit(
        rollout.to_dict(),
        as_json,
        lambda: console.print(
            f"Started {rollout.strategy.value} rollout #{rollout.id} of [bold]{escape(endpoint)}[/]"
            f" from {rollout.stable} to {rollout.candidate}; follow it with: "
            f"ferryman rollout status {escape(endpoint)} --watch"
        ),
    )


@app.command()
def status(
    endpoint: str = typer.Argument(..., help="The endpoint."),
    watch: bool = typer.Option(False, "--watch", "-w", help="Refresh until the rollout ends."),
    every: float = typer.Option(2.0, "--every", help="Seconds between refreshes with --watch."),
    watch_seconds: float = typer.Option(
        WATCH_LIMIT_SECONDS, "--watch-seconds", help="Stop watching after this long."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Show the rollout's phase, traffic split, gates now, and what happens next."""
    from rich.live import Live

    if every <= 0 or watch_seconds <= 0:
        fail("--every and --watch-seconds must be > 0")
    if not watch:
        data = _status(endpoint)
        emit(data, as_json, lambda: console.print(_render(data)))
        return
    deadline = time.monotonic() + watch_seconds
    data = _status(endpoint)
    with Live(_render(data), console=console, refresh_per_second=4) as live:
        while data["phase"] in ("running", "paused", "waiting") and time.monotonic() < deadline:
            time.sleep(min(every, max(0.0, deadline - time.monotonic())))
            data = _status(endpoint)
            live.update(_render(data))


def _status(endpoint: str) -> dict[str, Any]:
    from ferryman.capture import LogStore
    from ferryman.monitoring.source import StoreMetricSource
    from ferryman.rollout.status import describe
    from ferryman.store._tables import utcnow

    with _service() as service:
        rollout = service.get(endpoint)
        metrics = StoreMetricSource(service.database)
        log = LogStore.from_settings(settings())
        return describe(service, rollout, metrics=metrics, now=utcnow(), log=log)


def _render(data: dict[str, Any]) -> Table:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    traffic = data["traffic"]
    table.add_row("rollout", f"#{data['id']} {data['strategy']} of {escape(data['endpoint'])}")
    table.add_row("versions", f"stable {data['stable']} → candidate {data['candidate']}")
    table.add_row("phase", f"{data['phase']} ({data['stage']})")
    split = f"stable {traffic['stable']:g} % / candidate {traffic['candidate']:g} %"
    if traffic["mirrored"]:
        split += f"; mirrored {traffic['mirrored']:.0%}"
    table.add_row("traffic", split)
    gates = data.get("gates")
    for result in (gates or {}).get("results", []):
        observed = "no data" if result["observed"] is None else f"{result['observed']:.6g}"
        threshold = "?" if result["threshold"] is None else f"{result['threshold']:.6g}"
        table.add_row(
            "gate",
            f"{escape(result['gate'])}: {observed} vs {threshold} → {result['status']} "
            f"({result['samples']}/{result['min_samples']} samples)",
        )
    table.add_row("next", escape(data["next"]))
    experiment = data.get("experiment")
    if experiment:
        analysis = experiment.get("analysis")
        if analysis:
            for arm in analysis["arms"]:
                ci = arm["ci"]
                table.add_row(
                    "arm",
                    f"{arm['name']}: {arm['count']} outcomes, mean {arm['mean']:.4g} "
                    f"[{ci['low']:.4g}, {ci['high']:.4g}]",
                )
            table.add_row("verdict", f"{analysis['verdict']}: {escape(analysis['reason'])}")
        else:
            table.add_row(
                "verdict", escape(experiment.get("waiting") or experiment.get("error", ""))
            )
    for event in data["events"][-5:]:
        table.add_row("history", f"{event['at'][:19]} {event['kind']}: {escape(event['message'])}")
    return table


def _command(endpoint: str, action: str, reason: str, as_json: bool) -> None:
    with _service() as service:
        if action == "promote":
            rollout = service.promote(endpoint)
        elif action == "pause":
            rollout = service.pause(endpoint)
        elif action == "resume":
            rollout = service.resume(endpoint)
        elif action == "abort":
            rollout = service.abort(endpoint, reason=reason)
        else:
            rollout = service.rollback(endpoint, reason=reason)
    emit(
        rollout.to_dict(),
        as_json,
        lambda: console.print(
            f"Rollout #{rollout.id} of [bold]{escape(endpoint)}[/]: {rollout.phase.value}, "
            f"candidate at {rollout.weight:g} %"
        ),
    )


_REASON = typer.Option("", "--reason", help="Why, for the history and the audit log.")


@app.command()
def promote(endpoint: str = typer.Argument(...), as_json: bool = JsonOption) -> None:
    """Move the rollout forward now (next canary step, blue-green switch, …)."""
    _command(endpoint, "promote", "", as_json)


@app.command()
def pause(endpoint: str = typer.Argument(...), as_json: bool = JsonOption) -> None:
    """Hold the rollout where it is; traffic stays split."""
    _command(endpoint, "pause", "", as_json)


@app.command()
def resume(endpoint: str = typer.Argument(...), as_json: bool = JsonOption) -> None:
    """Let a paused rollout go on."""
    _command(endpoint, "resume", "", as_json)


@app.command()
def abort(
    endpoint: str = typer.Argument(...), reason: str = _REASON, as_json: bool = JsonOption
) -> None:
    """Stop the rollout: all traffic back on the stable version."""
    _command(endpoint, "abort", reason, as_json)


@app.command()
def rollback(
    endpoint: str = typer.Argument(...), reason: str = _REASON, as_json: bool = JsonOption
) -> None:
    """Return the endpoint to its last stable version, now (also after a finished rollout)."""
    _command(endpoint, "rollback", reason, as_json)


@app.command()
def history(
    endpoint: str = typer.Argument(...),
    limit: int = typer.Option(10, "--limit", "-n", help="Most rollouts shown."),
    as_json: bool = JsonOption,
) -> None:
    """The endpoint's rollouts, newest first, each with its events and evidence."""
    with _service() as service:
        rollouts = service.history(endpoint, limit=limit)
        data = [
            {**r.to_dict(), "events": [e.to_dict() for e in service.events(r.id)]} for r in rollouts
        ]

    def render() -> None:
        if not data:
            console.print(f"Endpoint {escape(endpoint)} has no rollouts")
        for item in data:
            console.print(
                f"[bold]#{item['id']}[/] {item['strategy']} {item['stable']} → "
                f"{item['candidate']}: {item['phase']} (by {escape(item['created_by'])}, "
                f"{item['created_at'][:19]})"
            )
            for event in item["events"]:
                console.print(
                    f"  {event['at'][:19]} {event['kind']:<12} [{escape(event['actor'])}] "
                    f"{escape(event['message'])}"
                )

    emit(data, as_json, render)


def _numbers(text: str, option: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        fail(f"invalid {option} {text!r}: expected comma-separated numbers, e.g. 10,25,50,100")


def _smoke_rows(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        fail(f"cannot read --smoke-file {str(path)!r}: {exc.strerror}")
    except ValueError as exc:
        fail(f"--smoke-file {str(path)!r} is not JSON: {exc}")
    rows = data.get("instances") if isinstance(data, dict) else data
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        fail(
            f"--smoke-file {str(path)!r}: expected a JSON list of records (or "
            '{"instances": [...]}), e.g. [{"age": 42, ...}]'
        )
    return rows
