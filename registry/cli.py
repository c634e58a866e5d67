"""`tuneforge registry ...`: inspect, promote, roll back, download and verify registered models.

Every command takes --json for machine-readable output. A failure prints one line `error: ...` on stderr
and exits non-zero, with no traceback and the registry unchanged.
"""

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from registry import api
from registry.config import RegistrySections, load_registry_sections
from registry.versions import VersionInfo
from tuneforge.base.errors import StageError, report_failure
from tuneforge.base.layout import PARAMS_FILE

app = typer.Typer(
    name="registry",
    help="The model and artifact registry: versions, lineage, aliases, promotion gates, audit log.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _console() -> Console:
    # Piped output (CI logs, tests) gets wide tables instead of rich's 80-column default and ellipses.
    return Console() if sys.stdout.isatty() else Console(width=200)

Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


@app.callback()
def _global_options(
    ctx: typer.Context,
    params: Annotated[Path, typer.Option("--params", help="params.yaml whose registry: and promotion: to use.")] = (
        PARAMS_FILE
    ),
) -> None:
    ctx.obj = params


def _params(ctx: typer.Context) -> RegistrySections:
    path = Path(ctx.obj or PARAMS_FILE)
    # Without a params.yaml in the working directory the defaults apply; a named file must exist.
    if path == PARAMS_FILE and not path.exists():
        return RegistrySections()
    return load_registry_sections(path)


def _handles_errors(command):
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except StageError as exc:
            raise typer.Exit(report_failure(exc)) from None
        except SQLAlchemyError as exc:
            original = getattr(exc, "orig", None) or exc
            raise typer.Exit(report_failure(StageError(f"registry database: {_first_line(original)}"))) from None
        except OSError as exc:
            message = f"{exc.filename + ': ' if exc.filename else ''}{exc.strerror or exc}"
            raise typer.Exit(report_failure(StageError(message))) from None

    return wrapper


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0]


def _command(name: str | None = None):
    """A registry command: registered on the app, and a known failure is one line and a non-zero exit."""
    return lambda function: app.command(name)(_handles_errors(function))


def _registry(ctx: typer.Context):
    return _params(ctx).registry


def _emit(payload: Any, as_json: bool, render: Callable[[Any], None]) -> None:
    """What a command shows: with --json the payload as JSON, else `render` prints it for people."""
    if as_json:
        _print_json(_jsonable(payload))
    else:
        render(payload)


def _print_json(payload: Any) -> None:
    print(json.dumps(payload, indent=2, sort_keys=True, default=str))


def _jsonable(value: Any) -> Any:
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    return value.to_json() if hasattr(value, "to_json") else value


def _table(*columns: str, title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


@_command()
def models(ctx: typer.Context, as_json: Json = False) -> None:
    """List registered models with their latest version and aliases."""
    _emit(api.models(config=_registry(ctx)), as_json, _print_models)


def _print_models(rows: list[dict]) -> None:
    table = _table("model", "latest", "aliases", "created")
    for row in rows:
        aliases = ", ".join(f"{alias} -> {version}" for alias, version in row["aliases"].items())
        table.add_row(row["name"], str(row["latest_version"]), aliases, row["created_at"])
    _console().print(table)


@_command()
def artifacts(ctx: typer.Context, as_json: Json = False) -> None:
    """List artifact names with their latest version."""
    _emit(api.artifacts(config=_registry(ctx)), as_json, _print_artifacts)


def _print_artifacts(rows: list[dict]) -> None:
    table = _table("artifact", "version", "kind", "sha256", "size", "path")
    for row in rows:
        table.add_row(row["name"], str(row["version"]), row["kind"], row["sha256"][:12], str(row["size"]), row["path"])
    _console().print(table)


@_command()
def versions(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Model or artifact name.")],
             as_json: Json = False) -> None:
    """List the versions of a model (or of an artifact)."""
    _emit(api.versions(name, config=_registry(ctx)), as_json, lambda rows: _print_versions(name, rows))


def _print_versions(name: str, rows: list) -> None:
    if rows and isinstance(rows[0], VersionInfo):
        table = _table("version", "aliases", "tags", "roles", "created", title=f"model {name}")
        for row in rows:
            table.add_row(str(row.version), ", ".join(row.aliases), ", ".join(row.tags),
                          ", ".join(f"{role}={ref}" for role, ref in row.artifacts.items()), row.created_at)
    else:
        table = _table("version", "kind", "sha256", "size", "stage", "run", title=f"artifact {name}")
        for row in rows:
            table.add_row(str(row.version), row.kind, row.sha256[:12], str(row.size), row.stage or "", row.run_id or "")
    _console().print(table)


@_command()
def show(ctx: typer.Context, ref: Annotated[str, typer.Argument(help="NAME, NAME:VERSION or NAME@ALIAS.")],
         as_json: Json = False) -> None:
    """Show a model, a model version or an artifact version in full."""
    _emit(api.show(ref, config=_registry(ctx)), as_json, _print_record)


def _print_record(info: dict) -> None:
    what = {"model": info.get("name"), "artifact": f"{info.get('name')}:{info.get('version')}",
            "model_version": f"{info.get('model')}:{info.get('version')}"}[info["type"]]
    table = _table("field", "value", title=f"{info['type'].replace('_', ' ')} {what}")
    for key, value in info.items():
        if key in ("type", "files"):
            continue
        if key == "artifacts":
            value = "\n".join(f"{role}: {a['name']}:{a['version']} sha256:{a['sha256']}" for role, a in value.items())
        if isinstance(value, dict | list):
            value = json.dumps(value, indent=1, sort_keys=True, default=str)
        table.add_row(key, "" if value is None else str(value))
    _console().print(table)
    if info.get("files"):
        files = _table("file", "sha256", "size")
        for entry in info["files"]:
            files.add_row(entry["path"], entry["sha256"], str(entry["size"]))
        _console().print(files)


@_command()
def lineage(ctx: typer.Context,
            ref: Annotated[str, typer.Argument(help="An artifact (NAME[:VERSION]) or a model version.")],
            as_json: Json = False) -> None:
    """Print the tree from REF back to its raw sources, with every hash."""
    # Plain lines, not a rich Tree: full hashes must never be cropped to the terminal width.
    _emit(api.lineage(ref, config=_registry(ctx)), as_json, lambda tree: print("\n".join(_tree_lines(tree))))


def _node_label(node: dict) -> str:
    role = f"{node['role']}: " if node.get("role") else ""
    text = f"{role}{node['ref']} ({node['kind']})"
    if node.get("sha256"):
        text += f" sha256:{node['sha256']}"
    if node.get("path"):
        text += f" {node['path']}"
    return text + (" (shown above)" if node.get("repeated") else "")


def _tree_lines(node: dict, prefix: str = "", last: bool = True, root: bool = True) -> list[str]:
    lines = [_node_label(node) if root else f"{prefix}{'└── ' if last else '├── '}{_node_label(node)}"]
    inner = "" if root else prefix + ("    " if last else "│   ")
    for index, child in enumerate(node["inputs"]):
        lines += _tree_lines(child, inner, index == len(node["inputs"]) - 1, root=False)
    return lines


@_command()
def register(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    artifacts: Annotated[list[str], typer.Argument(help="ROLE=ARTIFACT[:VERSION], e.g. onnx_int8=export.onnx")],
    metric: Annotated[list[str] | None, typer.Option("--metric", help="Extra metric KEY=NUMBER.")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Tag for the new version.")] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why, for the event log.")] = None,
    as_json: Json = False,
) -> None:
    """Register a new model version grouping artifacts by role."""
    roles = dict(_pair(item, "ROLE=ARTIFACT") for item in artifacts)
    metrics = {key: _number(value, key) for key, value in (_pair(item, "KEY=NUMBER") for item in metric or [])}
    info = api.register_model(name, roles, metrics=metrics, tags=tag or [], reason=reason, config=_registry(ctx))
    _emit(info, as_json, lambda info: _console().print(
        f"registered {info} ({', '.join(f'{r}={a}' for r, a in info.artifacts.items())})"
    ))


def _pair(item: str, shape: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key or not value:
        raise StageError(f"expected {shape}, got {item!r}")
    return key, value


def _number(value: str, key: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise StageError(f"metric {key}: {value!r} is not a number") from None


@_command()
def promote(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    # Read as text and parsed by the registry: click's int() would take '٣' (an Arabic-Indic three) as 3.
    version: Annotated[str, typer.Argument(help="Version to promote (a positive integer).")],
    to: Annotated[str, typer.Option("--to", help="Alias to move, e.g. staging or production.")],
    force: Annotated[bool, typer.Option("--force", help="Move the alias even if gates fail (needs --reason).")] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="Why; recorded in the event log.")] = None,
    as_json: Json = False,
) -> None:
    """Evaluate the promotion gates of params.yaml and move the alias only if all pass."""
    params = _params(ctx)
    result = api.promote(name, version, to, force=force, reason=reason, policy=params.promotion,
                         config=params.registry)
    version = result.version
    if as_json:
        _print_json(result.to_json())
    else:
        table = _table("gate", "required", "observed", "result", title=f"promote {name}:{version} -> {to}")
        for gate in result.gates:
            table.add_row(gate.gate, gate.required, gate.observed,
                          "[green]pass[/green]" if gate.passed else "[red]FAIL[/red]")
        _console().print(table)
    was = f" (was {name}:{result.previous})" if result.previous else ""
    if result.passed:
        return None if as_json else _console().print(f"promoted {name}:{version} to {to}{was}")
    if result.forced:
        return None if as_json else _console().print(f"forced {name}:{version} to {to}{was}: {reason}")
    failed = [gate.gate for gate in result.gates if not gate.passed]
    raise StageError(
        f"promotion of {name}:{version} to {to} refused: {len(failed)} gate(s) failed: {'; '.join(failed)}"
    )


@_command()
def rollback(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str, typer.Option("--alias", help="Alias to return to its previous holder.")],
    reason: Annotated[str | None, typer.Option("--reason", help="Why; recorded in the event log.")] = None,
    as_json: Json = False,
) -> None:
    """Return an alias to the version that held it before."""
    _emit(api.rollback(name, alias, reason=reason, config=_registry(ctx)), as_json, lambda moved: _console().print(
        f"rolled back {name}@{alias}: {name}:{moved['from']} -> {name}:{moved['to']}"
    ))


@_command()
def download(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="Artifact or model version reference.")],
    dest: Annotated[Path, typer.Argument(help="Where to write it (must not exist yet, or be an empty folder).")],
    as_json: Json = False,
) -> None:
    """Copy an artifact or a model version out of the store, verifying every sha256."""
    path = api.download(ref, dest, config=_registry(ctx))
    _emit({"ref": ref, "path": str(path)}, as_json, lambda _: _console().print(f"downloaded {ref} to {path}"))


@_command()
def verify(
    ctx: typer.Context,
    ref: Annotated[str | None, typer.Argument(help="Artifact or model version; all artifacts if omitted.")] = None,
    as_json: Json = False,
) -> None:
    """Re-hash stored blobs, and the cached copies resolve serves, and report any missing or tampered with."""
    report = api.verify(ref, config=_registry(ctx))
    if as_json:
        _print_json(report)
    elif report["problems"]:
        table = _table("artifact", "expected sha256", "actual")
        for problem in report["problems"]:
            table.add_row(problem["artifact"], problem["expected"], problem["actual"])
        _console().print(table)
    if report["problems"]:
        raise StageError(f"{len(report['problems'])} problem(s) found ({report['checked']} blob(s) and "
                         f"{report['cached']} cached copies checked)")
    if not as_json:
        _console().print(f"ok: {report['checked']} blob(s) of {report['artifacts']} artifact(s) verified and "
                         f"{report['cached']} cached copies")


@_command()
def gc(
    ctx: typer.Context,
    grace_s: Annotated[float, typer.Option("--grace-s", help="Keep unreferenced files younger than this.")] = 3600,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only report what would be removed.")] = False,
    as_json: Json = False,
) -> None:
    """Remove blobs no artifact references (left by interrupted registrations)."""
    report = api.gc(grace_s=grace_s, dry_run=dry_run, config=_registry(ctx))
    _emit(report, as_json, lambda report: _print_gc(report, dry_run))


def _print_gc(report: dict, dry_run: bool) -> None:
    verb = "would remove" if dry_run else "removed"
    _console().print(
        f"{verb} {report['removed_blobs']} blob(s), {report['removed_manifests']} manifest(s), "
        f"{report['removed_temporaries']} temporary file(s), {report['freed_bytes']} bytes; "
        f"{report['kept_blobs']} blob(s) in use"
    )


@_command()
def events(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Only this model's events.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many of the newest events.")] = 50,
    as_json: Json = False,
) -> None:
    """The audit log: registrations, gate decisions, promotions, forced promotions, rollbacks."""
    _emit(api.events(name, limit=limit, config=_registry(ctx)), as_json, _print_events)


def _print_events(rows: list[dict]) -> None:
    table = _table("at", "actor", "event", "subject", "reason")
    for row in rows:
        table.add_row(row["at"], row["actor"], row["kind"], row["subject"], row["reason"] or "")
    _console().print(table)


@_command("tag")
def tag_version(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="Model version: NAME:VERSION or NAME@ALIAS.")],
    tags: Annotated[list[str], typer.Argument(help="Tags to add.")],
    as_json: Json = False,
) -> None:
    """Add tags to a model version."""
    _emit(api.tag(ref, tags, config=_registry(ctx)), as_json, lambda info: _console().print(
        f"{info}: tags {', '.join(info.tags)}"
    ))


if __name__ == "__main__":
    app()
