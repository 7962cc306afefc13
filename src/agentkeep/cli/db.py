"""``agentkeep db …`` (Alembic migrations) and ``agentkeep health``."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from agentkeep.cli.common import (
    console,
    errors,
    load_settings,
    missing_sqlite_file,
    no_database_at,
    with_service,
)
from agentkeep.db import migrate
from agentkeep.db.service import DatabaseService

db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)


@db_app.command()
def upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations up to REVISION (default: the newest)."""

    def run(service: DatabaseService) -> None:
        before = migrate.current(service)
        migrate.upgrade(service, revision)
        after = migrate.current(service)
        console.print(f"{escape(service.masked_url)}: {before or 'empty'} -> {after}")

    with_service(run)


@db_app.command()
def downgrade(revision: Annotated[str, typer.Argument(help="target, or 'base'")]) -> None:
    """Revert migrations down to REVISION ('base' removes every agentkeep table). A SQLite file
    that does not exist is refused (exit 5), not made."""

    def run(service: DatabaseService) -> None:
        migrate.downgrade(service, revision)
        console.print(f"{escape(service.masked_url)}: now at {migrate.current(service) or 'base'}")

    with_service(run, must_exist=True)


@db_app.command()
def current() -> None:
    """Show the revision the database is at and the newest one available (never creates the
    database: a SQLite file that does not exist exits 5)."""

    def run(service: DatabaseService) -> None:
        at = migrate.current(service)
        newest = migrate.head()
        state = "up to date" if at == newest else "behind: run `agentkeep db upgrade`"
        console.print(
            f"{escape(service.masked_url)}: at {at or 'empty'}, newest {newest} ({state})"
        )

    with_service(run, must_exist=True)


@db_app.command()
def check() -> None:
    """Fail (exit 1) if the database schema differs from the models or is not migrated (exit 5
    if a SQLite file does not exist: it is not created)."""

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

    with_service(run, must_exist=True)


def health(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Check the database: reachable, schema up to date (never creates one).

    Exits 5 when it cannot be reached (or a SQLite file does not exist), 1 when its schema is
    missing or behind.
    """
    settings = load_settings()
    missing = missing_sqlite_file(settings)
    if missing is not None:
        report: dict[str, Any] = {
            "status": "error",
            "message": no_database_at(missing),
            "url": settings.masked_url,
        }
    else:
        report = with_service(_health, settings)
    if as_json:
        console.print_json(json.dumps(report, default=str))
    else:
        table = Table(show_header=False)
        for key, value in report.items():
            table.add_row(key, "" if value is None else escape(str(value)))
        console.print(table)
    if report["status"] != "success":
        raise typer.Exit(5)
    if report["schema"] != "up to date":
        raise typer.Exit(1)


def _health(service: DatabaseService) -> dict[str, Any]:
    report = service.health()
    if report["status"] == "success":
        at, newest = migrate.current(service), migrate.head()
        if at is None:
            report["schema"] = "missing: no agentkeep tables (run `agentkeep db upgrade`)"
        elif at != newest:
            report["schema"] = f"behind: at {at}, newest {newest} (run `agentkeep db upgrade`)"
        else:
            report["schema"] = "up to date"
        report["revision"] = at
    return report
