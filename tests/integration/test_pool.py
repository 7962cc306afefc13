"""The PostgreSQL pool on a real server: a pooled connection that died while idle is replaced."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text

from agentkeep import Settings, UnavailableError
from agentkeep.db.service import DatabaseService
from conftest import fresh_postgres_database

pytestmark = pytest.mark.postgres


@pytest.fixture
def url(postgres_server_url: str) -> str:
    return fresh_postgres_database(postgres_server_url, "agentkeep_pool")


def _backend_pid(service: DatabaseService) -> int:
    with service.unit("read", single=True) as conn:
        return int(conn.scalar(text("SELECT pg_backend_pid()")) or 0)


def _terminate(url: str, pid: int) -> None:
    """What a server restart or an idle-connection reaper does to a pooled connection."""
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        assert conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}) is True
    admin.dispose()


@pytest.fixture
def one_connection_pool(url: str) -> Settings:
    return Settings(database_url=url, pool_size=1, pool_max_overflow=0, pool_pre_ping_idle=0.05)


def test_a_connection_killed_while_idle_is_replaced_before_use(
    url: str, one_connection_pool: Settings
) -> None:
    service = DatabaseService(one_connection_pool)
    try:
        first = _backend_pid(service)
        _terminate(url, first)
        time.sleep(0.1)  # longer than pool_pre_ping_idle: the checkout pings it
        second = _backend_pid(service)
        assert second != first
        assert service.health()["status"] == "success"
    finally:
        service.dispose()


def test_without_pre_ping_the_dead_connection_surfaces_as_unavailable(
    url: str, one_connection_pool: Settings
) -> None:
    service = DatabaseService(one_connection_pool.model_copy(update={"pool_pre_ping": False}))
    try:
        _terminate(url, _backend_pid(service))
        time.sleep(0.1)
        with pytest.raises(UnavailableError):
            _backend_pid(service)
        _backend_pid(service)  # the pool threw the dead connection away; the next one works
    finally:
        service.dispose()
