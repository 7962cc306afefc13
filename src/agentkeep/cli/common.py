"""What every command shares: the consoles, opening the configured store, and turning domain
errors into exit codes (``AgentkeepError.exit_code``).

A command that fails says why in one line on standard error, never with a traceback: a database
that cannot be opened (a driver that is not installed, a directory that cannot be made) exits 2,
one that cannot be reached exits 5. The store logs each database failure as it translates it; while
a command reports that same failure itself, the log record would only repeat it (with a traceback
for an unexpected one), so it is held back unless ``AGENTKEEP_LOG_LEVEL=DEBUG``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import ArgumentError

from agentkeep.config import Settings
from agentkeep.db import migrate
from agentkeep.db.service import DatabaseService
from agentkeep.errors import AgentkeepError
from agentkeep.repositories.base import Sync
from agentkeep.repositories.facade import DatabaseManager

console = Console()
errors = Console(stderr=True, soft_wrap=True)  # an error stays on one line, whatever its length

T = TypeVar("T")

STORE_LOGGER = "agentkeep.db"
"""The logger the data boundary reports database failures on (``db/translate.py``)."""


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
    settings = settings or load_settings()
    try:
        service = DatabaseService(settings)
    except (AgentkeepError, ValueError) as exc:
        refuse(str(exc))
    except (ArgumentError, ImportError, OSError) as exc:  # unknown driver, missing module, mkdir
        refuse(f"the database {settings.masked_url} cannot be opened: {exc}")
    try:
        with _reported_here(settings):
            return action(service)
    except AgentkeepError as exc:
        fail(exc)
    finally:
        service.dispose()


@contextmanager
def _reported_here(settings: Settings) -> Iterator[None]:
    """Hold back the store's log records of the failures this command reports itself."""
    if settings.log_level.upper() == "DEBUG":
        yield
        return
    logger = logging.getLogger(STORE_LOGGER)
    logger.addFilter(_none)
    try:
        yield
    finally:
        logger.removeFilter(_none)


def _none(record: logging.LogRecord) -> bool:
    return False


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
