"""What every command shares: the consoles, opening the configured store, and turning domain
errors into exit codes (``AgentkeepError.exit_code``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from agentkeep.config import Settings
from agentkeep.db import migrate
from agentkeep.db.service import DatabaseService
from agentkeep.errors import AgentkeepError
from agentkeep.repositories.base import Sync
from agentkeep.repositories.facade import DatabaseManager

console = Console()
errors = Console(stderr=True)

T = TypeVar("T")


def refuse(message: str, exit_code: int = 2) -> NoReturn:
    """Print ``message`` (plain text, never markup) as an error and exit."""
    errors.print(f"[red]error:[/] {escape(message)}")
    raise typer.Exit(exit_code)


def fail(exc: AgentkeepError) -> NoReturn:
    errors.print(f"[red]{exc.code}:[/] {escape(exc.message)}")
    raise typer.Exit(exc.exit_code)


def load_settings() -> Settings:
    """The ``AGENTKEEP_*`` settings; invalid ones exit 2 with pydantic's explanation."""
    try:
        return Settings()
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        refuse(str(exc))


def with_service(action: Callable[[DatabaseService], T], settings: Settings | None = None) -> T:
    """Run ``action`` on the configured database; a domain error becomes its exit code."""
    try:
        service = DatabaseService(settings or Settings())
    except (AgentkeepError, ValueError) as exc:
        refuse(str(exc))
    try:
        return action(service)
    except AgentkeepError as exc:
        fail(exc)
    finally:
        service.dispose()


def with_store(action: Callable[[DatabaseManager[Sync]], T]) -> T:
    """Run ``action`` on the store (migrated first unless ``AGENTKEEP_AUTO_MIGRATE=false``).

    The in-memory store is refused: whatever a command wrote there would be gone when it ends.
    """

    def run(service: DatabaseService) -> T:
        if service.is_memory:
            refuse("the in-memory store keeps nothing between commands: set a database")
        if service.settings.auto_migrate:
            migrate.upgrade(service)
        return action(DatabaseManager(service, Sync))

    return with_service(run)
