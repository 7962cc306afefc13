"""``agentkeep config sync|export|diff|schema``: configuration as code.

A project file (JSON, or YAML when it ends in ``.yaml`` / ``.yml``) declares personas, modules,
tools, agents and workflows by name (``agentkeep.project``). ``sync`` makes the store declare the
same, in one transaction, and prints what it created, updated, left unchanged and (with
``--prune``) deleted, per kind; ``diff`` prints what a sync would change; ``export`` writes the
store back as a project file; ``schema`` prints the file's JSON Schema for editors.

A file with any bad entry is refused whole (exit 2), with the file, the path inside it
(``agents[2].tools[0]``) and the field named; nothing is written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml  # type: ignore[import-untyped]  # PyYAML ships no type hints
from rich import box
from rich.markup import escape
from rich.table import Table

from agentkeep.cli.common import console, errors, fail, load_settings, with_store
from agentkeep.db.service import DatabaseService
from agentkeep.errors import AgentkeepError
from agentkeep.project import Project, SyncReport, export_project, read_project, sync_project
from agentkeep.project.model import KINDS, YAML_SUFFIXES, project_schema
from agentkeep.repositories.base import Sync
from agentkeep.repositories.facade import DatabaseManager

config_app = typer.Typer(
    help="Configuration as code: sync a project file into the store, export it back.",
    no_args_is_help=True,
)

ProjectFile = Annotated[
    Path, typer.Argument(help="the project file: JSON, or YAML (.yaml, .yml)", dir_okay=False)
]


def load(path: Path) -> Project:
    """The project file at ``path``, validated; a bad one ends the command (exit 2)."""
    try:
        return read_project(path, limit=load_settings().max_request_bytes)
    except AgentkeepError as exc:
        fail(exc)


def run_sync(
    db: DatabaseManager[Sync], project: Project, source: str, *, prune: bool, dry_run: bool
) -> SyncReport:
    """Sync ``project`` in one unit of work (a read-only one for a dry run)."""
    return db.run(
        lambda uow: sync_project(uow, project, prune=prune, dry_run=dry_run, source=source),
        "read" if dry_run else "write",
    )


@config_app.command()
def sync(
    file: ProjectFile,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="report what would change, write nothing")
    ] = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="delete what the file does not declare")
    ] = False,
) -> None:
    """Make the store declare what FILE declares, by name, in one transaction."""
    project = load(file)
    report = with_store(
        lambda db: run_sync(db, project, str(file), prune=prune, dry_run=dry_run),
        must_exist=dry_run,
    )
    print_report(report)
    if dry_run:
        console.print(f"dry run: nothing written ({report.changes} change(s) to make)")
    else:
        console.print(f"{report.changes} change(s) written")


@config_app.command()
def diff(
    file: ProjectFile,
    prune: Annotated[
        bool, typer.Option("--prune", help="also show what a pruning sync would delete")
    ] = False,
) -> None:
    """Show what syncing FILE would change: each entry created, updated (with its changed
    fields) or deleted."""
    project = load(file)
    report = with_store(
        lambda db: run_sync(db, project, str(file), prune=prune, dry_run=True), must_exist=True
    )
    if report.changes == 0:
        console.print("no changes: the store already declares what the file does")
        return
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for column in ("", "kind", "name", "fields"):
        table.add_column(column)
    for kind in KINDS:
        result = report.kind(kind)
        for name in result.created:
            table.add_row("[green]+[/]", kind, escape(name), "")
        for name in result.updated:
            fields = ", ".join(result.changed_fields.get(name, []))
            table.add_row("[yellow]~[/]", kind, escape(name), escape(fields))
        for name in result.deleted:
            table.add_row("[red]-[/]", kind, escape(name), "")
    console.print(table)


@config_app.command()
def export(
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            dir_okay=False,
            help="write to this file (YAML if it ends in .yaml or .yml) instead of printing",
        ),
    ] = None,
) -> None:
    """Write the store's personas, modules, tools, agents and workflows as a project file."""
    document = with_store(lambda db: db.run(export_project, "read"), must_exist=True).document()
    yaml_format = output is not None and output.suffix.lower() in YAML_SUFFIXES
    text = dump(document, yaml_format=yaml_format)
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        errors.print(f"[red]error:[/] cannot write {escape(str(output))}: {escape(str(exc))}")
        raise typer.Exit(2) from None
    count = sum(len(document.get(kind, [])) for kind in KINDS)
    errors.print(f"wrote {count} entries to {escape(str(output))}")


@config_app.command()
def schema() -> None:
    """Print the JSON Schema of a project file (point an editor's "$schema" at it)."""
    typer.echo(json.dumps(project_schema(), indent=2, ensure_ascii=False))


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]
    """YAML that reads back as it was written: text holding a character that YAML reads as a
    line break (NEL, LINE and PARAGRAPH SEPARATOR) is double-quoted, where it is escaped; in
    any other style PyYAML writes it raw and reads it back folded into a space."""


_BREAKS = frozenset("\x85\u2028\u2029")


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = '"' if not _BREAKS.isdisjoint(value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def dump(document: dict[str, Any], *, yaml_format: bool) -> str:
    if yaml_format:
        text: str = yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True)
        return text
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def print_report(report: SyncReport) -> None:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    table.add_column("kind")
    columns = ["created", "updated", "unchanged"] + (["deleted"] if report.prune else [])
    for column in columns:
        table.add_column(column, justify="right")
    for kind in KINDS:
        result = report.kind(kind)
        table.add_row(kind, *(str(len(getattr(result, column))) for column in columns))
    console.print(table)


def sync_at_start(service: DatabaseService, project: Project, source: str) -> None:
    """``serve --config FILE``: sync the file into the (migrated) store before the server
    starts, saying what changed on one line."""
    report = run_sync(DatabaseManager(service, Sync), project, source, prune=False, dry_run=False)
    totals = {
        column: sum(len(getattr(report.kind(kind), column)) for kind in KINDS)
        for column in ("created", "updated", "unchanged")
    }
    summary = ", ".join(f"{count} {column}" for column, count in totals.items())
    typer.echo(f"config: synced {source} ({summary})")
