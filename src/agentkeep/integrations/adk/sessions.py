"""``AgentkeepSessionService``: Google ADK's session service over an agentkeep store.

Where everything lives is told in ``store.py``; how events become messages in ``events.py``.

Each call is one unit of work in one worker-thread hop, so the event loop never blocks on the
database. Appends from many tasks at once (on SQLite, into one commit: ``db.group_commit``) each
store their event and their state keys without reading the session first: the store orders the
events (a per-conversation sequence number) and writes each state key by itself, so a session
object that is behind the store is not an error here (ADK's database services raise
``StaleSessionError`` there) and no event or key is lost.

The service remembers which conversation holds each session it has made, read or written
(``keys.py``), so an append writes straight to it without looking the session up. On PostgreSQL
it is then one round trip: the event's message and its session-state keys go as one pipelined
transaction (``AdkStore.append_at_once``). What that cannot settle by itself (a session deleted
or made again since it was remembered, a retried event, app or user keys, which need their
holders found) goes on to a unit that looks the session up when it must.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event
from google.adk.platform import uuid as platform_uuid
from google.adk.sessions import _session_util
from google.adk.sessions.base_session_service import (
    BaseSessionService,
    GetSessionConfig,
    ListSessionsResponse,
)
from google.adk.sessions.session import Session
from google.adk.sessions.state import State

from agentkeep.config import Settings
from agentkeep.errors import NotFoundError
from agentkeep.models.common import check_text
from agentkeep.repositories.base import in_worker_thread
from agentkeep.repositories.facade import DatabaseManager, connect

from .events import message_of
from .keys import SessionKeys
from .store import AdkStore, stored_time

T = TypeVar("T")


class Runner:
    """Runs the adapter's work in units of work of a store (sync or async alike)."""

    def __init__(self, db: DatabaseManager[Any]) -> None:
        self.db = db

    async def write(self, work: Callable[[AdkStore], T], *, at_once: bool = False) -> T:
        """``work`` in a write unit; on a SQLite file it may share a commit with other writes.
        ``at_once`` (PostgreSQL): the unit is in autocommit and ``work`` makes its own
        transaction (:meth:`AdkStore.append_at_once`)."""
        return await in_worker_thread(self._write, work, at_once)

    async def read(self, work: Callable[[AdkStore], T]) -> T:
        """``work`` in a read unit: every read sees one state of the store."""
        return await in_worker_thread(self._read, work)

    def _write(self, work: Callable[[AdkStore], T], at_once: bool) -> T:
        # the adapter's work touches only the database: it may share a commit (and be run again)
        return self.db.run_unit(
            "write", lambda uow: work(AdkStore(uow)), single=at_once, grouped=True
        )

    def _read(self, work: Callable[[AdkStore], T]) -> T:
        return self.db.run_unit("read", lambda uow: work(AdkStore(uow)))


def merged(app: dict[str, Any], user: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """A session's state as ADK shows it: its own keys, then ``app:`` and ``user:`` keys."""
    state = dict(own)
    state.update({State.APP_PREFIX + key: value for key, value in app.items()})
    state.update({State.USER_PREFIX + key: value for key, value in user.items()})
    return state


def _write_shared(
    store: AdkStore, agent_id: Any, app_name: str, user_id: str, deltas: dict[str, dict[str, Any]]
) -> None:
    if deltas["app"]:
        store.put_state(store.holder(agent_id, app_name, None), deltas["app"])
    if deltas["user"]:
        store.put_state(store.holder(agent_id, app_name, user_id), deltas["user"])


def _clean(session_id: str) -> str:
    check_text(session_id, "session_id")  # a ValidationError naming it, before any lookup
    # ADK's in-memory and SQLite services ignore surrounding whitespace in session ids
    return session_id.strip() if session_id else session_id


class AgentkeepSessionService(BaseSessionService):
    """ADK sessions, events and state kept in agentkeep (SQLite, in memory or PostgreSQL).

    Args:
        db: A store from :func:`agentkeep.connect` (or ``connect_sync``); it stays the caller's
            to close. Use :meth:`from_url` to let the service open and close its own.
    """

    def __init__(self, db: DatabaseManager[Any]) -> None:
        self._run = Runner(db)
        self._owned = False
        self._keys = SessionKeys(db.service.changes)
        # libpq's pipeline: PostgreSQL through psycopg
        self._pipelined = db.service.engine.dialect.driver == "psycopg"

    @classmethod
    def from_url(cls, url: str | os.PathLike[str] | Settings) -> AgentkeepSessionService:
        """A service over the store at ``url`` (a database URL, a SQLite path or ``"memory"``),
        which :meth:`close` closes."""
        service = cls(connect(url))
        service._owned = True
        return service

    @property
    def db(self) -> DatabaseManager[Any]:
        return self._run.db

    async def close(self) -> None:
        """Close the store if this service opened it."""
        self._keys.close()
        if self._owned:
            await in_worker_thread(self.db.close)

    async def create_session(
        self,
        *,
        app_name: str,
        user_id: str,
        state: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session:
        given = _clean(session_id) if session_id else None
        new_id = given or platform_uuid.new_uuid()
        deltas = _session_util.extract_json_safe_state_delta(state or {})

        def create(store: AdkStore) -> Session:
            agent_id = store.app(app_name, create=True)
            assert agent_id is not None  # made if missing
            if given is not None:
                store.lock_session(app_name, user_id, given)
                if store.session(app_name, user_id, given) is not None:
                    raise AlreadyExistsError(f"Session with id {given} already exists.")
            row = store.create_session(agent_id, user_id, new_id)
            store.put_state(row.id, deltas["session"])
            _write_shared(store, agent_id, app_name, user_id, deltas)
            app, users = store.shared_state(agent_id, app_name, user_id)
            self._keys.put((app_name, user_id, new_id), (row.id, agent_id))
            return Session(
                id=new_id,
                app_name=app_name,
                user_id=user_id,
                state=merged(app, users.get(user_id, {}), deltas["session"]),
                last_update_time=row.updated_at.timestamp(),
            )

        return await self._run.write(create)

    async def get_session(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> Session | None:
        session_id = _clean(session_id)
        limit = config.num_recent_events if config else None
        after = config.after_timestamp if config else None

        def get(store: AdkStore) -> Session | None:
            row = store.session(app_name, user_id, session_id)
            if row is None:
                return None
            events = store.events(row.id, limit=limit, after=after)
            self._keys.put((app_name, user_id, session_id), (row.id, row.agent_id))
            app, users = store.shared_state(row.agent_id, app_name, user_id)
            return Session(
                id=session_id,
                app_name=app_name,
                user_id=user_id,
                state=merged(app, users.get(user_id, {}), store.state(row.id)),
                events=events,
                last_update_time=row.updated_at.timestamp(),
            )

        return await self._run.read(get)

    async def list_sessions(
        self, *, app_name: str, user_id: str | None = None
    ) -> ListSessionsResponse:
        """The app's sessions (one user's, if given) with their state and without events, the
        most recently updated last."""

        def list_them(store: AdkStore) -> list[Session]:
            rows = store.sessions(app_name, user_id)
            if not rows:
                return []
            own = store.sessions_state(app_name, user_id)
            app, users = store.shared_state(rows[0].agent_id, app_name, user_id)
            return [
                Session(
                    id=row.session_id,
                    app_name=app_name,
                    user_id=row.user_id,
                    state=merged(app, users.get(row.user_id, {}), own.get(row.id, {})),
                    last_update_time=row.updated_at.timestamp(),
                )
                for row in rows
            ]

        return ListSessionsResponse(sessions=await self._run.read(list_them))

    async def delete_session(self, *, app_name: str, user_id: str, session_id: str) -> None:
        """Delete the session with its events and state (nothing if there is none)."""
        session_id = _clean(session_id)

        def delete(store: AdkStore) -> None:
            row = store.session(app_name, user_id, session_id)
            if row is not None:
                store.uow.conversations.delete(row.id)

        self._keys.drop((app_name, user_id, session_id))
        await self._run.write(delete)

    async def get_user_state(self, *, app_name: str, user_id: str) -> dict[str, Any]:
        def read(store: AdkStore) -> dict[str, Any]:
            agent_id = store.app(app_name, create=False)
            if agent_id is None:
                return {}
            return store.shared_state(agent_id, app_name, user_id)[1].get(user_id, {})

        return await self._run.read(read)

    async def append_event(self, session: Session, event: Event) -> Event:
        """Store ``event`` at the end of the session and apply its state delta (``temp:`` keys
        only to ``session``, never to the store); a partial event is not stored."""
        if event.partial:
            return event
        self._apply_temp_state(session, event)
        event = self._trim_temp_delta_state(event)
        message = message_of(event)
        deltas = _session_util.extract_json_safe_state_delta(event.actions.state_delta)
        at = stored_time(event.timestamp)
        app_name, user_id, session_id = session.app_name, session.user_id, session.id

        key = (app_name, user_id, session_id)
        keys = self._keys

        def at_once(store: AdkStore) -> bool:
            found = keys.get(key)
            if found is None:
                found = store.session_key(app_name, user_id, session_id)
                if found is None:
                    raise SessionNotFoundError(f"Session {session_id} not found.")
                keys.put(key, found)
            return store.append_at_once(found[0], message, at, deltas["session"])

        def append(store: AdkStore) -> None:
            found = keys.get(key)
            if found is not None:
                try:  # to the conversation remembered: nothing is written if it is gone
                    store.append(found[0], message, at)
                except NotFoundError:
                    keys.drop(key)
                    found = None
            if found is None:
                found = store.session_key(app_name, user_id, session_id)
                if found is None:
                    raise SessionNotFoundError(f"Session {session_id} not found.")
                try:
                    store.append(found[0], message, at)
                except NotFoundError as exc:  # deleted since it was read
                    raise SessionNotFoundError(f"Session {session_id} not found.") from exc
            conversation_id, agent_id = found
            store.put_state(conversation_id, deltas["session"], conversation_checked=True)
            _write_shared(store, agent_id, app_name, user_id, deltas)
            keys.put(key, found)

        # An event goes to the conversation the service remembers for the session, if it does
        # (the lookup is skipped); on PostgreSQL one whose delta has no app or user keys is
        # stored in one round trip. Anything else (the session deleted since it was remembered,
        # or made again; a retried event; app or user keys) takes a unit that looks the session
        # up when it must and answers as ADK's services do.
        if not (self._pipelined and not (deltas["app"] or deltas["user"])):
            await self._run.write(append)
        elif not await self._run.write(at_once, at_once=True):
            keys.drop(key)
            await self._run.write(append)
        session.last_update_time = at.timestamp()
        return self._commit_event_to_session(session, event)
