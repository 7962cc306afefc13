"""The ``agentkeep`` command: database migrations and health. No SQL here.

Domain errors map to exit codes (``AgentkeepError.exit_code``): 2 bad input, 3 not found,
4 conflict, 5 storage.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agentkeep.config import Settings
from agentkeep.db import migrate
from agentkeep.db.service import DatabaseService
from agentkeep.errors import AgentkeepError

app = typer.Typer(help="agentkeep: persistence and memory for AI agents.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")

console = Console()
errors = Console(stderr=True)

T = TypeVar("T")


def _with_service(action: Callable[[DatabaseService], T]) -> T:
    """Run ``action`` on the configured database; a domain error becomes its exit code."""
    try:
        service = DatabaseService(Settings())
    except (AgentkeepError, ValueError) as exc:
        errors.print(f"[red]error:[/] {escape(str(exc))}")  # messages may hold [brackets]
        raise typer.Exit(2) from None
    try:
        return action(service)
    except AgentkeepError as exc:
        errors.print(f"[red]{exc.code}:[/] {escape(exc.message)}")
        raise typer.Exit(exc.exit_code) from None
    finally:
        service.dispose()


@db_app.command()
def upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations up to REVISION (default: the newest)."""

    def run(service: DatabaseService) -> None:
        before = migrate.current(service)
        migrate.upgrade(service, revision)
        after = migrate.current(service)
        console.print(f"{escape(service.masked_url)}: {before or 'empty'} -> {after}")

    _with_service(run)


@db_app.command()
def downgrade(revision: Annotated[str, typer.Argument(help="target, or 'base'")]) -> None:
    """Revert migrations down to REVISION ('base' removes every agentkeep table)."""

    def run(service: DatabaseService) -> None:
        migrate.downgrade(service, revision)
        console.print(f"{escape(service.masked_url)}: now at {migrate.current(service) or 'base'}")

    _with_service(run)


@db_app.command()
def current() -> None:
    """Show the revision the database is at and the newest one available."""

    def run(service: DatabaseService) -> None:
        at = migrate.current(service)
        newest = migrate.head()
        state = "up to date" if at == newest else "behind: run `agentkeep db upgrade`"
        console.print(
            f"{escape(service.masked_url)}: at {at or 'empty'}, newest {newest} ({state})"
        )

    _with_service(run)


@db_app.command()
def check() -> None:
    """Fail (exit 1) if the database schema differs from the models or is not migrated."""

    def run(service: DatabaseService) -> None:
        if migrate.pending(service):
            errors.print("[red]the database is not at the newest revision[/]")
            raise typer.Exit(1)
        diffs = migrate.check(service)
        if diffs:
            errors.print("[red]the schema differs from the models:[/]")
            for line in diffs:
                errors.print(f"  {escape(line)}")
            raise typer.Exit(1)
        console.print("schema matches the models")

    _with_service(run)


@app.command()
def health(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Check the database connection (exit 5 when it fails)."""
    report = _with_service(lambda service: service.health())
    if as_json:
        console.print_json(json.dumps(report, default=str))
    else:
        table = Table(show_header=False)
        for key, value in report.items():
            table.add_row(key, "" if value is None else escape(str(value)))
        console.print(table)
    if report["status"] != "success":
        raise typer.Exit(5)
