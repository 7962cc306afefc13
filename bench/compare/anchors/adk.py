"""Google ADK's ``DatabaseSessionService``, as its documentation sets it up.

``DatabaseSessionService(db_url=…)`` with the async drivers it asks for (``sqlite+aiosqlite``,
``postgresql+asyncpg``) and nothing else configured. A conversation is a session; a message is an
``Event`` (author, ``Content`` with one text ``Part``, ``custom_metadata``) stored by
``append_event``, one transaction each. Full history: ``get_session``; last 50:
``get_session(config=GetSessionConfig(num_recent_events=50))``; a user's conversations:
``list_sessions(app_name, user_id)``, which has no limit: it returns all of that user's sessions.

Fills go through ADK's own storage model in one transaction: events become rows by
``StorageEvent.from_event`` (what ``append_event`` stores), sessions rows as ``create_session``
writes them (each user's first session is made by ``create_session`` itself, so the app and user
state rows exist); the session's ``update_time`` then moves to the newest event, as
``append_event`` would, and the held session object is refreshed so its next append passes ADK's
stale-session check.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.compare import measure
from bench.compare.anchors import lib, versions
from bench.compare.workload import Msg

APP = "bench"
CHUNK = 5_000


class AdkSubject(measure.Subject):
    label = "Google ADK DatabaseSessionService"
    kind = "async"

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        sessions = lib("google.adk.sessions")
        self.GetSessionConfig = lib("google.adk.sessions.base_session_service").GetSessionConfig
        self.types = lib("google.genai.types")
        self.Event = lib("google.adk.events").Event
        self.svc = sessions.DatabaseSessionService(db_url=self._url())
        self.users: set[str] = set()
        driver = "aiosqlite" if spec["backend"] == "sqlite" else "asyncpg"
        self.versions = versions("google-adk", "SQLAlchemy", driver)
        self.fill_how = (
            "ADK's storage model in one transaction (StorageEvent.from_event rows; session rows "
            "as create_session writes them), session update_time moved as append_event would"
        )

    def _url(self) -> str:
        if self.spec["backend"] == "sqlite":
            return f"sqlite+aiosqlite:///{self.spec['sqlite_path']}"
        return str(self.spec["pg_url"]).replace("+psycopg", "+asyncpg")

    async def start(self) -> None:
        await self.svc.create_session(app_name=APP, user_id="setup")
        async with self.svc.db_engine.connect() as conn:
            if self.spec["backend"] == "sqlite":
                journal = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
                level = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar()
                names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
                self.durability = (
                    f"journal_mode={str(journal).upper()}, synchronous={names.get(level, level)}"
                )
            else:
                sync = (await conn.exec_driver_sql("SHOW synchronous_commit")).scalar()
                self.durability = f"synchronous_commit={sync}"

    def _event(self, msg: Msg, timestamp: float | None = None) -> Any:
        types = self.types
        fields: dict[str, Any] = {
            "author": msg.role,
            "invocation_id": "bench",
            "content": types.Content(
                role="user" if msg.role == "user" else "model", parts=[types.Part(text=msg.text)]
            ),
            "custom_metadata": msg.meta,
        }
        if timestamp is not None:
            fields["timestamp"] = timestamp
        return self.Event(**fields)

    async def create_conversation(self, user: str) -> Any:
        self.users.add(user)
        return await self.svc.create_session(app_name=APP, user_id=user)

    async def append(self, conv: Any, msg: Msg) -> None:
        await self.svc.append_event(conv, self._event(msg))

    async def load_all(self, conv: Any) -> int:
        session = await self.svc.get_session(app_name=APP, user_id=conv.user_id, session_id=conv.id)
        return len(session.events)

    async def load_last(self, conv: Any, n: int) -> int:
        config = self.GetSessionConfig(num_recent_events=n)
        session = await self.svc.get_session(
            app_name=APP, user_id=conv.user_id, session_id=conv.id, config=config
        )
        return len(session.events)

    async def list_user(self, user: str, limit: int) -> int:
        # ADK has no limit: every session of the user comes back (and is built as an object)
        return len((await self.svc.list_sessions(app_name=APP, user_id=user)).sessions)

    async def fill_messages(self, conv: Any, msgs: Sequence[Msg]) -> None:
        if not msgs:
            return
        schema = self.svc._get_schema_classes()
        start = time.time() - len(msgs) * 1e-5 - 1
        events = [self._event(m, start + k * 1e-5) for k, m in enumerate(msgs)]
        table = schema.StorageEvent.__table__
        rows = [_columns(schema.StorageEvent.from_event(conv, e), table) for e in events]
        newest = datetime.fromtimestamp(events[-1].timestamp, UTC).replace(tzinfo=None)
        sessions = schema.StorageSession.__table__
        sa = lib("sqlalchemy")
        async with self.svc.db_engine.begin() as conn:
            for first in range(0, len(rows), CHUNK):
                await conn.execute(sa.insert(table), rows[first : first + CHUNK])
            await conn.execute(
                sa.update(sessions)
                .where(sessions.c.app_name == APP, sessions.c.id == conv.id)
                .values(update_time=newest)
            )
        await self._refresh(conv)

    async def _refresh(self, conv: Any) -> None:
        config = self.GetSessionConfig(num_recent_events=0)
        fresh = await self.svc.get_session(
            app_name=APP, user_id=conv.user_id, session_id=conv.id, config=config
        )
        conv.last_update_time = fresh.last_update_time
        conv._storage_update_marker = fresh._storage_update_marker

    async def create_conversations(self, owners: Sequence[str]) -> None:
        for owner in sorted(set(owners) - self.users):
            await self.create_conversation(owner)  # ADK's own call makes the user-state row
        sessions = self.svc._get_schema_classes().StorageSession.__table__
        # distinct times, as sessions created one by one would have
        start = datetime.now(UTC).replace(tzinfo=None) - timedelta(milliseconds=len(owners))
        rows = [
            {
                "app_name": APP,
                "user_id": owner,
                "id": str(uuid.uuid4()),
                "state": {},
                "create_time": start + timedelta(milliseconds=i),
                "update_time": start + timedelta(milliseconds=i),
            }
            for i, owner in enumerate(owners)
        ]
        sa = lib("sqlalchemy")
        async with self.svc.db_engine.begin() as conn:
            for first in range(0, len(rows), CHUNK):
                await conn.execute(sa.insert(sessions), rows[first : first + CHUNK])

    async def close(self) -> None:
        await self.svc.close()


def _columns(row: Any, table: Any) -> dict[str, Any]:
    return {column.key: getattr(row, column.key) for column in table.columns}


async def open_subject(spec: dict[str, Any]) -> measure.Subject:
    subject = AdkSubject(spec)
    await subject.start()
    return subject
