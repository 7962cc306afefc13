"""Driver errors a full disk raises become ``StorageFullError``, answered 507; an unreachable
database becomes ``UnavailableError``, answered 503 with ``Retry-After``."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from sqlalchemy.exc import OperationalError

from agentkeep import StorageError, StorageFullError, UnavailableError
from agentkeep.api.errors import RETRY_AFTER_SECONDS, status_of
from agentkeep.db.translate import translate


def _sqlite_full() -> sqlite3.OperationalError:
    """The error SQLite raises when its disk is full, made for real (no disk needed)."""
    conn = sqlite3.connect(":memory:")
    conn.execute("PRAGMA max_page_count=2")  # the database may not grow: SQLITE_FULL
    try:
        conn.execute("CREATE TABLE t (x TEXT)")
        conn.execute("INSERT INTO t VALUES (?)", ("x" * 100_000,))
    except sqlite3.OperationalError as exc:
        return exc
    finally:
        conn.close()
    raise AssertionError("SQLite accepted a write over its page limit")


class TestTranslation:
    def test_a_full_sqlite_disk_is_storage_full(self) -> None:
        orig = _sqlite_full()
        assert orig.sqlite_errorname == "SQLITE_FULL"
        error = translate(OperationalError("INSERT", {}, orig))
        assert isinstance(error, StorageFullError)
        assert error.code == "storage_full"
        assert "no space left" in error.message
        assert status_of(error) == 507

    def test_a_full_postgresql_disk_is_storage_full(self) -> None:
        orig = psycopg.errors.DiskFull("could not extend file: No space left on device")
        assert orig.sqlstate == "53100"
        error = translate(OperationalError("INSERT", {}, orig))
        assert isinstance(error, StorageFullError)
        assert status_of(error) == 507

    def test_an_unreachable_database_is_unavailable(self) -> None:
        orig = psycopg.OperationalError("connection failed: No such file or directory")
        error = translate(OperationalError("SELECT 1", {}, orig))
        assert isinstance(error, UnavailableError)
        assert status_of(error) == 503
        assert RETRY_AFTER_SECONDS > 0

    @pytest.mark.parametrize("message", ["disk I/O error", "no such table: nothing"])
    def test_other_failures_stay_storage_errors(self, message: str) -> None:
        error = translate(OperationalError("SELECT 1", {}, sqlite3.OperationalError(message)))
        assert type(error) is StorageError
        assert status_of(error) == 500
