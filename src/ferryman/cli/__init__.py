"""The ``ferryman`` command line: one Typer app, one module per command group.

Heavy modules (the database driver, the scientific stack, the server) are imported inside
the command functions, so ``ferryman --help`` stays fast.
"""

from __future__ import annotations

import typer

from ferryman.cli import (
    alerts,
    audit,
    db,
    demo,
    drift,
    endpoints,
    logs,
    models,
    replay,
    rollouts,
    serve,
    strategies,
    tokens,
)
from ferryman.cli._app import EXIT_USAGE, err_console

app = typer.Typer(
    name="ferryman",
    help="Take trained models to production and keep them healthy there.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(models.app, name="models")
app.add_typer(endpoints.app, name="endpoints")
app.add_typer(tokens.app, name="tokens")
app.add_typer(drift.app, name="drift")
app.add_typer(audit.app, name="audit")
app.add_typer(db.app, name="db")
rollouts.app.command("report")(replay.shadow_report)
app.add_typer(rollouts.app, name="rollout")
app.command("replay")(replay.replay)
app.add_typer(alerts.app, name="alerts")
app.add_typer(logs.app, name="logs")
app.command("performance")(logs.performance)
app.command("review")(logs.review)
app.command("deploy")(rollouts.deploy)
app.command("strategies")(strategies.strategies)
app.command("advise")(strategies.advise)
app.command("serve")(serve.serve)
app.command("demo")(demo.demo)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code.

    Ferryman errors and usage errors print one line on stderr and return 2.
    """
    from ferryman.errors import FerrymanError

    try:
        result = app(args=argv, prog_name="ferryman", standalone_mode=False)
    except typer.Abort:
        err_console.print("aborted")
        return 1
    except typer.TyperException as exc:  # usage errors (typer bundles its own click)
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        err_console.print(f"[bold red]error:[/] {message}", highlight=False)
        return EXIT_USAGE
    except FerrymanError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        return EXIT_USAGE
    return result if isinstance(result, int) else 0


__all__ = ["app", "main"]
