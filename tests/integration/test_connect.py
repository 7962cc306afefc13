"""Opening a store: from a URL string or a file path, as ``sqlite3.connect`` and
``create_engine`` take them, as well as from settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

import agentkeep
from agentkeep import Settings
from agentkeep.models.conversation import ConversationCreate


def _round_trip(db: agentkeep.DatabaseManager[agentkeep.Sync]) -> None:
    with db:
        created = db.conversations.create(ConversationCreate(user_id="u1"))
        assert db.conversations.get(created.id) is not None


def test_a_sqlite_url(tmp_path: Path) -> None:
    _round_trip(agentkeep.connect_sync(f"sqlite:///{tmp_path / 'a.db'}"))
    assert (tmp_path / "a.db").exists()


@pytest.mark.parametrize("as_path", [False, True], ids=["str", "Path"])
def test_a_file_path(tmp_path: Path, as_path: bool) -> None:
    target = tmp_path / "b.db"
    _round_trip(agentkeep.connect_sync(target if as_path else str(target)))
    assert target.exists()


@pytest.mark.parametrize("name", ["memory", ":memory:"])
def test_memory(name: str) -> None:
    db = agentkeep.connect_sync(name)
    assert db.service.is_memory
    _round_trip(db)


@pytest.mark.postgres
def test_a_postgresql_url(postgres_server_url: str) -> None:
    # the plain URL a user copies from their provider: no SQLAlchemy driver name in it
    url = make_url(postgres_server_url).set(drivername="postgresql")
    db = agentkeep.connect_sync(url.render_as_string(hide_password=False))
    assert db.service.dialect == "postgresql"
    _round_trip(db)


@pytest.mark.postgres
@pytest.mark.anyio
async def test_async_connect_takes_a_url(postgres_url: str) -> None:
    async with agentkeep.connect(postgres_url) as db:
        created = await db.conversations.create(ConversationCreate(user_id="u2"))
        assert (await db.conversations.get(created.id)) is not None


def test_the_rest_of_the_settings_still_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTKEEP_MAX_CONTENT_BYTES", "1234")
    with agentkeep.connect_sync(tmp_path / "c.db") as db:
        assert db.settings.max_content_bytes == 1234


def test_settings_still_work(tmp_path: Path) -> None:
    _round_trip(agentkeep.connect_sync(Settings(database_url=f"sqlite:///{tmp_path / 'd.db'}")))


def test_anything_else_is_refused_clearly() -> None:
    with pytest.raises(TypeError, match="URL, a file path or Settings"):
        agentkeep.connect_sync(42)  # type: ignore[arg-type]
