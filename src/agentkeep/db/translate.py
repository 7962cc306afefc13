"""Driver errors become domain errors here, once, at the data boundary.

Bad input (a conflict, a missing reference, an invalid value, text the driver cannot encode such
as a lone surrogate) is the caller's to handle and is not logged; a failing or unreachable
database is logged on ``agentkeep.db`` without the statement's parameters (they are users'
data).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError, StatementError

from agentkeep.errors import (
    AgentkeepError,
    ConflictError,
    NotFoundError,
    StorageError,
    StorageFullError,
    UnavailableError,
    ValidationError,
)

log = logging.getLogger("agentkeep.db")

_UNIQUE = re.compile(r"unique|duplicate key", re.IGNORECASE)
_FOREIGN = re.compile(r"foreign key", re.IGNORECASE)
_COLUMN = re.compile(r"(?:\.|Key \(|column \")(\w+)")


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn driver errors raised inside the block into domain errors, chaining the original.

    Errors of statements run through an agentkeep engine are translated as they are raised (the
    engine's ``handle_error`` hook calls :func:`translate`), so a repository can catch a
    ``ConflictError``; this catches what happens outside a statement.
    """
    try:
        yield
    except AgentkeepError:
        raise
    except SQLAlchemyError as exc:
        raise translate(exc) from exc
    except UnicodeEncodeError as exc:  # binding a parameter: not the database's failure
        raise unencodable(exc) from exc


def unencodable(exc: UnicodeEncodeError) -> ValidationError:
    """The error for text a driver could not encode to bind it: a lone surrogate (half of a
    UTF-16 pair), which no backend stores. The text itself is not quoted (it could not be sent
    either)."""
    character = exc.object[exc.start] if exc.start < len(exc.object) else ""
    code = f" (U+{ord(character):04X})" if character else ""
    if 0xD800 <= ord(character or "a") <= 0xDFFF:
        reason = f"it holds a lone surrogate{code}, which no database stores"
    else:
        reason = f"it holds a character the database cannot encode{code}"
    return ValidationError(f"a value given is not valid text: {reason}")


def translate(exc: SQLAlchemyError) -> AgentkeepError:
    """The domain error for a driver error (logged when the database itself failed)."""
    if isinstance(exc, StatementError) and isinstance(exc.orig, AgentkeepError):
        return exc.orig  # a bind processor refused a value (db.types): the input's fault
    if isinstance(exc, IntegrityError):
        return _refused(exc)
    if isinstance(exc, DBAPIError):
        return _driver_failed(exc)
    log.error("database error: %s", _first_line(str(exc)), exc_info=exc)
    return StorageError(f"database error: {_first_line(str(exc))}")


def _driver_failed(exc: DBAPIError) -> AgentkeepError:
    """The database refused or failed: unreachable, full, an invalid value, or else."""
    if exc.connection_invalidated or _is_unreachable(exc):
        log.warning("database unavailable: %s", _first_line(str(exc.orig)))
        return UnavailableError(f"database unavailable: {_first_line(str(exc.orig))}")
    if _is_full(exc):
        log.error("database full: %s", _first_line(str(exc.orig)))
        return StorageFullError(
            f"the database has no space left for this write: {_first_line(str(exc.orig))}"
        )
    if type(exc).__name__ == "DataError":
        return ValidationError(f"invalid value: {_first_line(str(exc.orig))}")
    if _is_unmigrated(exc):  # a set-up step left out, not a failure: no traceback
        log.warning("database without agentkeep's tables: %s", _first_line(str(exc.orig)))
        return StorageError(UNMIGRATED.format(_first_line(str(exc.orig))))
    # parameters are not logged: they are the users' data
    log.error("database error: %s", _first_line(str(exc.orig)), exc_info=exc)
    return StorageError(f"database error: {_first_line(str(exc.orig))}")


def _refused(exc: IntegrityError) -> AgentkeepError:
    detail = str(exc.orig)
    field = _field_of(detail)
    if _UNIQUE.search(detail):  # the database's wording names tables: not for users
        taken = f"this {field} is already taken" if field else "this already exists"
        return ConflictError(taken, field=field)
    if _FOREIGN.search(detail):
        return NotFoundError(
            f"refers to something that does not exist: {_first_line(detail)}", field=field
        )
    return ValidationError(f"rejected by the database: {_first_line(detail)}")


def _is_unreachable(exc: DBAPIError) -> bool:
    name = type(exc).__name__
    message = str(exc.orig).lower()
    return name in {"OperationalError", "InterfaceError"} and any(
        phrase in message
        for phrase in ("connect", "connection", "unable to open", "server closed", "timeout")
    )


UNMIGRATED = (
    "the database does not have agentkeep's tables ({}): run `agentkeep db upgrade`, or open"
    " it with upgrade=True (AGENTKEEP_AUTO_MIGRATE=true)"
)


def _is_unmigrated(exc: DBAPIError) -> bool:
    """A table is missing: the store was opened without migrating it."""
    if getattr(exc.orig, "sqlstate", None) == "42P01":  # PostgreSQL: undefined_table
        return True
    return str(exc.orig).startswith("no such table: ")  # SQLite


def _is_full(exc: DBAPIError) -> bool:
    """SQLite's ``SQLITE_FULL`` (its disk is full) or PostgreSQL's ``disk_full`` (53100)."""
    orig = exc.orig
    return (
        getattr(orig, "sqlite_errorname", None) == "SQLITE_FULL"
        or getattr(orig, "sqlstate", None) == "53100"
    )


def _field_of(detail: str) -> str | None:
    match = _COLUMN.search(detail)
    return match.group(1) if match else None


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else message
