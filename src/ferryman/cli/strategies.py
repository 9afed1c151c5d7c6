"""``ferryman strategies`` and ``ferryman advise``: compare deployment strategies, pick one."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Column, Table

from ferryman.cli._app import JsonOption, console, emit, fail

if TYPE_CHECKING:
    from ferryman.rollout.advisor import Advice

#: The rows of ``ferryman strategies``: label, attribute of a StrategyProfile.
_ASPECTS = (
    ("what it does", "summary"),
    ("downtime", "downtime"),
    ("extra capacity", "extra_capacity"),
    ("people", "human_involvement"),
    ("rollback", "rollback"),
    ("testing in production", "production_testing"),
    ("users exposed", "users_exposed"),
    ("what you learn", "what_you_learn"),
    ("fits when", "fits_when"),
)
_MARKS = {"meets": "[green]✓[/]", "partly": "[yellow]~[/]", "violates": "[red]✗[/]"}


def strategies(as_json: bool = JsonOption) -> None:
    """Show the five deployment strategies side by side."""
    from ferryman.rollout.advisor import STRATEGY_PROFILES

    profiles = list(STRATEGY_PROFILES.values())

    def render() -> None:
        table = Table("", show_lines=True)
        for profile in profiles:
            table.add_column(profile.strategy.value, overflow="fold")
        for label, attribute in _ASPECTS:
            table.add_row(f"[bold]{label}[/]", *(escape(getattr(p, attribute)) for p in profiles))
        console.print(table)

    emit([asdict(p) for p in profiles], as_json, render)


def advise(
    max_downtime: str | None = typer.Option(
        None, "--max-downtime", help="Longest tolerable outage, e.g. 0s, 30s, 5m. Default: any."
    ),
    budget: str = typer.Option(
        "medium", "--budget", help="Extra capacity you can pay for: low, medium or high."
    ),
    need_production_testing: bool = typer.Option(
        False,
        "--need-production-testing/--no-need-production-testing",
        help="Try the candidate on real traffic before every user gets it.",
    ),
    automated_rollback: bool = typer.Option(
        False,
        "--automated-rollback/--no-automated-rollback",
        help="A bad candidate must be taken out without a person.",
    ),
    measure_outcome: bool = typer.Option(
        False,
        "--measure-outcome/--no-measure-outcome",
        help="Measure the candidate's effect on a business outcome (conversion, revenue).",
    ),
    human_review: bool = typer.Option(
        False,
        "--human-review/--no-human-review",
        help="A person reviews before full exposure (without it, nobody is assumed to).",
    ),
    max_exposure: str | None = typer.Option(
        None,
        "--max-exposure",
        help="Largest share of users an unproven candidate may serve: 0, 5%, 0.25. Default: any.",
    ),
    load_time: str | None = typer.Option(
        None,
        "--load-time",
        help="How long draining, loading and warming up the model takes, e.g. 20s; "
        "judges recreate's downtime.",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Recommend a deployment strategy for your constraints, with the reasons."""
    from ferryman.errors import InvalidInputError
    from ferryman.rollout.advisor import BUDGETS, advise
    from ferryman.rollout.base import parse_duration

    if budget not in BUDGETS:
        fail(f"invalid --budget {budget!r}: expected one of {', '.join(BUDGETS)}")
    try:
        downtime = (
            None
            if max_downtime is None
            else parse_duration(max_downtime, field_name="--max-downtime")
        )
        load = None if load_time is None else parse_duration(load_time, field_name="--load-time")
    except InvalidInputError as exc:
        fail(str(exc))
    advice = advise(
        max_downtime_seconds=downtime,
        budget=budget,  # narrowed to Budget by the check above
        need_production_testing=need_production_testing,
        automated_rollback=automated_rollback,
        measure_business_outcome=measure_outcome,
        human_review=human_review,
        max_exposure=None if max_exposure is None else _share(max_exposure),
        load_seconds=load,
    )
    emit(advice.to_dict(), as_json, lambda: _render(advice))


def _render(advice: Advice) -> None:
    from ferryman.rollout.advisor import STRATEGY_PROFILES

    if advice.recommended is not None:
        console.print(f"[bold green]Recommended: {advice.recommended.value}[/]")
    else:
        console.print("[bold red]No recommendation[/]")
    console.print(escape(advice.summary), soft_wrap=True)
    if advice.recommended is not None:
        fits = STRATEGY_PROFILES[advice.recommended].fits_when
        console.print(f"[bold]Fits when:[/] {escape(fits)}", soft_wrap=True)
    table = Table("#", "strategy", "fit", Column("reasons", overflow="fold"), show_lines=True)
    for ranked in advice.ranking:
        fit = ", ".join(
            f"{count} {word}{'s' if count > 1 and word == 'caveat' else ''}"
            for count, word in ((ranked.violations, "violated"), (ranked.caveats, "caveat"))
            if count
        )
        reasons = "\n".join(
            f"{_MARKS[c.fit]} {escape(c.constraint)}: {escape(c.reason)}" for c in ranked.checks
        )
        table.add_row(str(ranked.rank), ranked.strategy.value, fit or "meets all", reasons)
    console.print(table)
    for conflict in advice.conflicts:
        console.print(f"[yellow]conflict:[/] {escape(conflict)}", soft_wrap=True)


def _share(text: str) -> float:
    """Parse ``0``, ``5%`` or ``0.25`` as a share in [0, 1]; exit 2 if malformed."""
    stripped = text.strip()
    try:
        value = float(stripped[:-1]) / 100 if stripped.endswith("%") else float(stripped)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        fail(f"invalid --max-exposure {text!r}: expected a share such as 0, 5% or 0.25")
    return value
