"""The ADK adapter's reads of one user's sessions on SQLite: every statement finds its rows by an
index of the user (or of the session), never by walking the app's every session through the
agent index, which SQLite's planner (without statistics) would otherwise choose; and the app and
user state those lookups find is merged into every session."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("google.adk")

from google.adk.sessions.base_session_service import GetSessionConfig
from sqlalchemy import event

import agentkeep
from agentkeep import Async, DatabaseManager
from agentkeep.integrations.adk import AgentkeepSessionService

pytestmark = [pytest.mark.anyio, pytest.mark.sqlite]

SESSIONS = 300
USERS = 30
AGENT_INDEX = "ix_conversations_agent_id_updated_at"


@contextmanager
def _selects(db: DatabaseManager[Async]) -> Iterator[list[tuple[str, Any]]]:
    """The SELECT statements run meanwhile, with their parameters, as sent to the driver."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    engine = db.service.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _plan(db: DatabaseManager[Async], statement: str, parameters: Any) -> list[str]:
    with db.service.engine.connect() as conn:
        rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
    return [row[3] for row in rows]


async def test_one_users_sessions_and_state_are_read_without_walking_the_apps_sessions(
    tmp_path: Path,
) -> None:
    db = agentkeep.connect(tmp_path / "adk.db")
    try:
        service = AgentkeepSessionService(db)
        await service.create_session(
            app_name="app", user_id="u7", state={"app:theme": "dark", "user:lang": "fr"}
        )
        for i in range(SESSIONS):
            await service.create_session(app_name="app", user_id=f"u{i % USERS}", state={"n": i})

        with _selects(db) as seen:
            listed = (await service.list_sessions(app_name="app", user_id="u7")).sessions
            one = await service.get_session(
                app_name="app",
                user_id="u7",
                session_id=listed[-1].id,
                config=GetSessionConfig(num_recent_events=1),
            )
            user_state = await service.get_user_state(app_name="app", user_id="u7")
            other_user_state = await service.get_user_state(app_name="app", user_id="u8")
        assert len(seen) >= 4
        for statement, parameters in seen:
            plan = _plan(db, statement, parameters)
            assert not any(AGENT_INDEX in step for step in plan), (statement, plan)
            assert not any(step.startswith("SCAN conversations") for step in plan), plan

        assert len(listed) == 1 + SESSIONS // USERS
        assert all(s.state["app:theme"] == "dark" for s in listed)
        assert all(s.state["user:lang"] == "fr" for s in listed)
        assert one is not None
        assert one.state["n"] == listed[-1].state["n"]
        assert one.state["user:lang"] == "fr"
        assert user_state == {"lang": "fr"}
        assert other_user_state == {}
    finally:
        await db.aclose()
