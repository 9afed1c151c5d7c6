"""``ferryman models``: register, list, show, alias, tag, approve and archive versions."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from ferryman.cli._app import (
    JsonOption,
    console,
    emit,
    fail,
    fmt_time,
    open_registry,
    parse_pairs,
    parse_time,
)

if TYPE_CHECKING:
    from ferryman.registry import VersionInfo

app = typer.Typer(
    help="Register models and manage their versions and aliases.", no_args_is_help=True
)


@app.command()
def register(
    name: str = typer.Argument(..., help="Registered model name, e.g. churn."),
    model: Path | None = typer.Option(
        None,
        "--model",
        "-m",
        help="Model file or directory: .skops, .onnx, XGBoost .json/.ubj, LightGBM .txt, an "
        "MLflow model directory, or (with --trusted) .joblib/.pkl.",
    ),
    code: Path | None = typer.Option(None, "--code", help="Python file defining the model class."),
    class_name: str | None = typer.Option(None, "--class", help="Class in --code to instantiate."),
    data: Path | None = typer.Option(
        None, "--data", help="Training data (Parquet or CSV) for signature, profile and lineage."
    ),
    target: str | None = typer.Option(None, "--target", help="Target column in --data."),
    metric: list[str] | None = typer.Option(None, "--metric", help="NAME=VALUE, repeatable."),
    param: list[str] | None = typer.Option(None, "--param", help="NAME=VALUE, repeatable."),
    tag: list[str] | None = typer.Option(None, "--tag", help="KEY=VALUE, repeatable."),
    description: str = typer.Option("", "--description", "-d"),
    owner_team: str | None = typer.Option(None, "--owner-team"),
    flavor: str | None = typer.Option(None, "--flavor", help="Force a flavor."),
    trusted: bool = typer.Option(
        False, "--trusted", help="Allow formats that run code when loaded (pickle, --code)."
    ),
    trusted_type: list[str] | None = typer.Option(
        None, "--trusted-type", help="Extra type skops may load, repeatable."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Register a new version of NAME from a model file or a Python class."""
    from ferryman.cli._files import read_model_file, read_table

    metrics: dict[str, float] = {}
    for key, value in parse_pairs(metric, "metric").items():
        try:
            metrics[key] = float(value)
        except ValueError:
            fail(f"invalid metric {key}={value!r}: expected a number")
    options: dict[str, Any] = {}
    if trusted_type:
        options["trusted_types"] = list(trusted_type)
    if code is not None or class_name is not None:
        if code is None or class_name is None or model is not None:
            fail("--code and --class go together, instead of --model")
        if not code.is_file():
            fail(f"code file {str(code)!r} does not exist")
        obj: object = None
        flavor = "python"
        options.update(code=str(code), class_name=class_name)
    elif model is None:
        fail("give the model: --model FILE, or --code FILE --class NAME")
    else:
        obj = read_model_file(model, trusted=trusted)
    X = y = None
    if data is not None:
        X = read_table(data)
        if target is not None:
            if target not in X.columns:
                fail(f"target column {target!r} is not in {data} (columns: {', '.join(X.columns)})")
            y = X.pop(target)
    elif target is not None:
        fail("--target needs --data")
    with open_registry() as registry:
        info = registry.register(
            obj,
            name=name,
            X=X,
            y=y,
            metrics=metrics,
            params=parse_pairs(param, "param"),
            tags=parse_pairs(tag, "tag"),
            description=description,
            flavor=flavor,
            trusted=trusted,
            flavor_options=options,
            owner_team=owner_team,
        )
    emit(
        info.to_dict(),
        as_json,
        lambda: console.print(
            f"Registered [bold]{info.ref}[/] ({info.flavor}, sha256 {info.artifact_sha256[:12]})"
        ),
    )


@app.command("list")
def list_models(
    tag: list[str] | None = typer.Option(None, "--tag", help="KEY=VALUE filter, repeatable."),
    owner_team: str | None = typer.Option(None, "--owner-team"),
    contains: str | None = typer.Option(None, "--contains", help="Name substring."),
    as_json: bool = JsonOption,
) -> None:
    """List registered models."""
    with open_registry() as registry:
        models = registry.list_models(
            tags=parse_pairs(tag, "tag"), owner_team=owner_team, name_contains=contains
        )

    def render() -> None:
        table = Table("name", "latest", "aliases", "owner", "tags", "description")
        for m in models:
            aliases = ", ".join(f"{a}→{v}" for a, v in m.aliases.items())
            tags = ", ".join(f"{k}={v}" for k, v in m.tags.items())
            table.add_row(
                m.name,
                str(m.latest_version or "-"),
                aliases,
                m.owner_team or "",
                tags,
                m.description,
            )
        console.print(table)

    emit([m.to_dict() for m in models], as_json, render)


@app.command()
def show(
    ref: str = typer.Argument(..., help="churn, churn/3 or churn@production."),
    at: str | None = typer.Option(None, "--at", help="Resolve as of this time (ISO 8601)."),
    profile: bool = typer.Option(False, "--profile", help="Include the reference profile."),
    as_json: bool = JsonOption,
) -> None:
    """Show one version: flavor, signature, metrics, lineage, status."""
    when = parse_time(at)
    with open_registry() as registry:
        info = registry.get_version(ref, at=when)
    emit(info.to_dict(include_profile=profile), as_json, lambda: _render_version(info))


@app.command()
def versions(
    name: str = typer.Argument(..., help="Model name."),
    status: list[str] | None = typer.Option(None, "--status", help="Filter, repeatable."),
    tag: list[str] | None = typer.Option(None, "--tag", help="KEY=VALUE filter, repeatable."),
    alias: str | None = typer.Option(None, "--alias", help="Only the version this alias names."),
    metric: list[str] | None = typer.Option(
        None, "--metric", help="Condition such as 'accuracy>=0.9', repeatable."
    ),
    as_json: bool = JsonOption,
) -> None:
    """List a model's versions, with filters."""
    with open_registry() as registry:
        found = registry.search_versions(
            name=name,
            status=status or None,
            tags=parse_pairs(tag, "tag"),
            alias=alias,
            metrics=metric or [],
        )

    def render() -> None:
        table = Table("version", "status", "aliases", "flavor", "metrics", "created", "by")
        for v in found:
            metrics = ", ".join(f"{k}={val:.4g}" for k, val in v.metrics.items())
            table.add_row(
                str(v.version),
                v.status.value,
                ", ".join(v.aliases),
                v.flavor,
                metrics,
                fmt_time(v.created_at),
                v.created_by,
            )
        console.print(table)

    emit([v.to_dict() for v in found], as_json, render)


@app.command()
def alias(
    name: str = typer.Argument(..., help="Model name."),
    alias_name: str = typer.Argument(..., metavar="ALIAS", help="Alias, e.g. production."),
    version: int | None = typer.Argument(None, help="Version to point to."),
    delete: bool = typer.Option(False, "--delete", help="Remove the alias."),
    as_json: bool = JsonOption,
) -> None:
    """Point NAME@ALIAS at VERSION (or remove it with --delete)."""
    if delete == (version is not None):
        fail("give a VERSION to point the alias to, or --delete")
    with open_registry() as registry:
        if delete:
            event = registry.delete_alias(name, alias_name)
        else:
            assert version is not None
            event = registry.set_alias(name, alias_name, version)
    before = f"{event.previous_version}" if event.previous_version is not None else "nothing"
    after = f"{event.version}" if event.version is not None else "nothing (deleted)"
    emit(
        event.to_dict(), as_json, lambda: console.print(f"{name}@{alias_name}: {before} → {after}")
    )


@app.command("alias-history")
def alias_history(
    name: str = typer.Argument(..., help="Model name."),
    alias_name: str | None = typer.Argument(None, metavar="[ALIAS]", help="One alias only."),
    as_json: bool = JsonOption,
) -> None:
    """Every move of a model's aliases, oldest first."""
    with open_registry() as registry:
        events = registry.alias_history(name, alias_name)

    def render() -> None:
        table = Table("time", "alias", "from", "to", "by")
        for e in events:
            table.add_row(
                fmt_time(e.at), e.alias, _opt(e.previous_version), _opt(e.version), e.actor
            )
        console.print(table)

    emit([e.to_dict() for e in events], as_json, render)


@app.command()
def tag(
    ref: str = typer.Argument(
        ..., help="Version (churn/3, churn@production) or, with --model, a model."
    ),
    tags: list[str] = typer.Argument(None, help="KEY=VALUE pairs to set."),
    remove: list[str] | None = typer.Option(None, "--remove", help="Tag key to remove."),
    model_level: bool = typer.Option(False, "--model", help="Tag the model, not a version."),
    as_json: bool = JsonOption,
) -> None:
    """Set or remove tags on a version (or, with --model, on the model)."""
    changes: dict[str, str | None] = dict(parse_pairs(tags, "tag"))
    changes.update({key: None for key in remove or []})
    if not changes:
        fail("nothing to change: give KEY=VALUE pairs or --remove KEY")
    with open_registry() as registry:
        if model_level:
            result: dict[str, Any] = registry.update_model(ref, tags=changes).to_dict()
        else:
            result = registry.update_version(ref, tags=changes).to_dict()
    emit(result, as_json, lambda: console.print(f"{ref}: tags {result['tags']}"))


def _status_command(status: str, verb: str) -> Any:
    def command(
        ref: str = typer.Argument(..., help="Version: churn/3 or churn@staging."),
        comment: str | None = typer.Option(None, "--comment", "-c", help="Why."),
        as_json: bool = JsonOption,
    ) -> None:
        with open_registry() as registry:
            info = registry.set_status(ref, status, comment=comment)
        emit(info.to_dict(), as_json, lambda: console.print(f"{info.ref} {verb}"))

    command.__doc__ = f"Mark a version as {status}."
    return command


app.command("approve")(_status_command("approved", "approved"))
app.command("reject")(_status_command("rejected", "rejected"))
app.command("archive")(_status_command("archived", "archived"))


@app.command()
def create(
    name: str = typer.Argument(..., help="Model name."),
    description: str = typer.Option("", "--description", "-d"),
    owner_team: str | None = typer.Option(None, "--owner-team"),
    tag: list[str] | None = typer.Option(None, "--tag", help="KEY=VALUE, repeatable."),
    as_json: bool = JsonOption,
) -> None:
    """Create an empty registered model (register creates it too)."""
    with open_registry() as registry:
        info = registry.create_model(
            name, description=description, owner_team=owner_team, tags=parse_pairs(tag, "tag")
        )
    emit(info.to_dict(), as_json, lambda: console.print(f"Created model [bold]{name}[/]"))


@app.command()
def predict(
    ref: str = typer.Argument(..., help="churn@production, churn/3 or churn."),
    input_path: Path = typer.Option(..., "--input", "-i", help="Parquet or CSV rows."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write Parquet or CSV here."),
    as_json: bool = JsonOption,
) -> None:
    """Load a version (verifying its artifact) and predict on a file."""
    from ferryman.cli._files import read_table, write_predictions

    frame = read_table(input_path)
    with open_registry() as registry:
        model = registry.load(ref)
    prediction = model.predict_batch(frame)
    result = write_predictions(prediction, output)
    emit(
        result,
        as_json,
        lambda: console.print(
            f"{len(prediction)} predictions from {model.ref}"
            + (f" written to {output}" if output else f": {result['predictions'][:20]}")
        ),
    )


def _render_version(info: VersionInfo) -> None:
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    rows = {
        "version": info.ref,
        "status": info.status.value + (f" by {info.status_by}" if info.status_by else ""),
        "aliases": ", ".join(info.aliases) or "-",
        "flavor": info.flavor,
        "artifact": f"sha256 {info.artifact_sha256} ({info.artifact_size:,} bytes)",
        "trusted": "yes (pickle-based format)" if info.trusted else "no",
        "created": f"{fmt_time(info.created_at)} by {info.created_by}",
        "description": info.description or "-",
        "metrics": ", ".join(f"{k}={v:.4g}" for k, v in info.metrics.items()) or "-",
        "params": ", ".join(f"{k}={v}" for k, v in info.params.items()) or "-",
        "tags": ", ".join(f"{k}={v}" for k, v in info.tags.items()) or "-",
    }
    if info.signature:
        columns = info.signature.get("columns", [])
        names = ", ".join(f"{c['name']}:{c['dtype']}" for c in columns[:12])
        more = f" … (+{len(columns) - 12})" if len(columns) > 12 else ""
        rows["signature"] = f"{len(columns)} columns: {names}{more}"
        rows["output"] = str(info.signature.get("output", {}).get("kind", "-"))
    lineage = info.lineage
    if lineage.get("data"):
        data = lineage["data"]
        rows["training data"] = (
            f"sha256 {str(data.get('sha256', ''))[:12]}, {data.get('rows')} rows"
        )
    if lineage.get("code"):
        code = lineage["code"]
        rows["code"] = f"{code.get('commit', '')[:12]}{' (dirty)' if code.get('dirty') else ''}"
    if lineage.get("parent_version"):
        rows["parent"] = f"{info.name}/{lineage['parent_version']}"
    for key, value in rows.items():
        table.add_row(key, value)
    console.print(table)


def _opt(value: int | None) -> str:
    return "-" if value is None else str(value)
