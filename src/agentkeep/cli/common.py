"""What every command shares: the consoles, opening the configured store, and turning domain
errors into exit codes (``AgentkeepError.exit_code``).

A command that fails says why in one line on standard error, never with a traceback: a database
that cannot be opened (a driver that is not installed, a directory that cannot be made) exits 2,
one that cannot be reached exits 5, as does a SQLite file that does not exist for a command that
only reads or changes what is there (opening it would create it, and a mistyped path would answer
"nothing found" or "empty").

The store logs each database failure as it translates it; while a command reports that same
failure itself, the log record would only repeat it (with a traceback for an unexpected one), so
it is held back unless ``AGENTKEEP_LOG_LEVEL=DEBUG``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import NoReturn, TypeVar

import typer
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import ErrorDetails
from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import ArgumentError

from agentkeep.config import Settings
from agentkeep.db import migrate
from agentkeep.db.service import DatabaseService
from agentkeep.errors import AgentkeepError
from agentkeep.repositories.base import Sync
from agentkeep.repositories.conversation_flow import MAX_AGE_SECONDS
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
    """The ``AGENTKEEP_*`` settings; invalid ones exit 2 naming each variable, what is wrong
    with it and the value given (unless the variable may hold a secret)."""
    try:
        return Settings()
    except PydanticValidationError as exc:
        refuse("; ".join(_setting_problem(error) for error in exc.errors()))
    except ValueError as exc:
        refuse(str(exc))


def _setting_problem(error: ErrorDetails) -> str:
    name = str(error["loc"][0]).upper() if error["loc"] else ""
    message = error["msg"].removeprefix("Value error, ")
    if not name:
        return message
    if isinstance(error["input"], str) and not any(w in name for w in _SECRET_WORDS):
        message += f" (got {error['input']!r})"
    return f"AGENTKEEP_{name}: {message}"


_SECRET_WORDS = ("KEY", "PASSWORD", "SECRET", "TOKEN", "URL")
"""A setting whose name has one of these may hold a secret: its value is never printed."""


def missing_sqlite_file(settings: Settings) -> Path | None:
    """The SQLite file the settings name, if it does not exist (opening it would create it)."""
    try:
        url = settings.url
    except ValueError:  # not a URL: opening it says so
        return None
    if url is None or url.get_backend_name() != "sqlite" or not url.database:
        return None
    if url.database.startswith("file:") or url.database == ":memory:":
        return None
    path = Path(url.database).expanduser()
    return None if path.exists() else path.resolve()


def no_database_at(path: Path) -> str:
    return (
        f"no database at {path}: `agentkeep serve` or `agentkeep db upgrade` creates it "
        "(AGENTKEEP_DATABASE_URL or AGENTKEEP_DATA_DIR choose another)"
    )


def with_service(
    action: Callable[[DatabaseService], T],
    settings: Settings | None = None,
    *,
    must_exist: bool = False,
) -> T:
    """Run ``action`` on the configured database; a domain error becomes its exit code.

    With ``must_exist`` (a command that never makes a database: one that only reads, or only
    changes what is there), a SQLite file that does not exist is refused (exit 5), and nothing
    is created.
    """
    settings = settings or load_settings()
    if must_exist:
        missing = missing_sqlite_file(settings)
        if missing is not None:
            refuse(no_database_at(missing), exit_code=5)
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


def with_store(action: Callable[[DatabaseManager[Sync]], T], *, must_exist: bool = False) -> T:
    """Run ``action`` on the store (migrated first unless ``AGENTKEEP_AUTO_MIGRATE=false``).

    The in-memory store is refused: whatever a command wrote there would be gone when it ends.
    With ``must_exist`` (a command that only reads, or changes only what is stored already:
    on a new database it could do nothing), so is a SQLite file that does not exist.
    """

    def run(service: DatabaseService) -> T:
        if service.is_memory:
            refuse("the in-memory store keeps nothing between commands: set a database")
        if service.settings.auto_migrate:
            migrate.upgrade(service)
        return action(DatabaseManager(service, Sync))

    return with_service(run, must_exist=must_exist)


def age(seconds: float, option: str) -> timedelta:
    """``seconds`` given to ``option`` as a duration: from 0 to a century, else exit 2."""
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_AGE_SECONDS:
        refuse(f"{option} must be a number of seconds from 0 to {MAX_AGE_SECONDS} (a century)")
    return timedelta(seconds=seconds)
