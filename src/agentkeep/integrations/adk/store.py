"""The SQL of the ADK adapter: where sessions, their state scopes and their events live.

Mapping onto agentkeep's tables (no table of its own):

- An ADK **app** is the agentkeep agent of that name (made on first use, ``metadata.framework =
  "adk"``; an agent of that name that already exists is used as it is). Its conversations are
  listed by the ``(agent_id, updated_at)`` index, already in ADK's order (oldest update first).
- A **session** is a conversation of that agent with ``user_id`` = the ADK user, ``chat_id`` =
  the session id and ``operation_type = "adk.session"``: found by the ``(user_id, chat_id)``
  index. ``updated_at`` is the session's ``last_update_time`` (its creation, then the timestamp of
  the event appended last, as ADK keeps it).
- **Session state** is the conversation's ``conversation_states`` (no persona, no module), one row
  per key, each written by one ``INSERT … ON CONFLICT DO UPDATE``: concurrent deltas never
  overwrite each other's keys and there is no stale read-modify-write.
- **App state** (``app:`` keys) and **user state** (``user:`` keys) are the states of one holder
  conversation per app (``user_id`` NULL, ``chat_id`` = the app name, ``"adk.app_state"``) and one
  per app and user (``chat_id`` NULL, ``"adk.user_state"``), both found by the ``(user_id,
  chat_id)`` index and made when first written. They show in agentkeep as conversations with no
  messages, whose states are the shared values. ``temp:`` keys are never stored.
- **Events** are messages (``events.py``), read by the ``(conversation_id, seq)`` index.

A holder or an app's agent is made at most once: SQLite runs one write at a time, and on
PostgreSQL the unit that makes one first takes a transaction-scoped advisory lock on its key.
"""

from __future__ import annotations

import functools
import uuid
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.adk.events.event import Event
from psycopg.pq import TransactionStatus
from sqlalchemy import (
    JSON,
    Connection,
    Insert,
    Integer,
    Select,
    Uuid,
    and_,
    bindparam,
    exists,
    func,
    literal_column,
    select,
    text,
    type_coerce,
    union_all,
)

from agentkeep.db.prepared import driver_error, prepared
from agentkeep.db.tables import agents, conversation_states, conversations, memories, messages
from agentkeep.db.types import new_id, utcnow
from agentkeep.models.common import check_json, to_uuid
from agentkeep.models.config import AgentCreate
from agentkeep.models.conversation import ConversationCreate, MessageCreate
from agentkeep.repositories.base import Repository, Sync, dialect_insert
from agentkeep.repositories.decode import converter
from agentkeep.repositories.facade import Unit
from agentkeep.repositories.keyed import changed
from agentkeep.repositories.states import scope_of, state_key

from .events import EVENT_KEY, message_event

_IDLE = TransactionStatus.IDLE
SESSION = "adk.session"
USER_STATE = "adk.user_state"
APP_STATE = "adk.app_state"
OWN_SCOPE = scope_of(None, None)
PAGE = 500
"""Events read at a time when a filter may stop the read early."""

_EVENT_COLUMNS = (
    messages.c.seq,
    messages.c.metadata[EVENT_KEY].as_string().label("event"),
    messages.c.id,
    messages.c.role,
    messages.c.content,
    messages.c.created_at,
)


def stored_time(timestamp: float) -> datetime:
    """The time a session's ``updated_at`` keeps for an event's timestamp (to the microsecond)."""
    return datetime.fromtimestamp(timestamp, UTC)


@dataclass(frozen=True, slots=True)
class SessionRow:
    """What a read of a session needs of its conversation."""

    id: uuid.UUID
    agent_id: uuid.UUID
    user_id: str
    session_id: str
    updated_at: datetime

    @classmethod
    def of(cls, row: Any) -> SessionRow:
        """From a result row or a conversation (both have these columns)."""
        return cls(row.id, row.agent_id, row.user_id, row.chat_id, row.updated_at)


_SESSION_COLUMNS = (
    conversations.c.id,
    conversations.c.agent_id,
    conversations.c.user_id,
    conversations.c.chat_id,
    conversations.c.updated_at,
)


# The adapter's statements, built once each (building one costs more than running it); their
# values are bound parameters.


@functools.cache
def _holder(of_user: bool, dialect: str) -> Select[Any]:
    """The conversation holding the app's state, or (``of_user``) one user's: one lookup by the
    (user_id, chat_id) index."""
    c = conversations.c
    if of_user:
        where = and_(
            c.user_id == bindparam("user_id"), c.chat_id.is_(None), c.operation_type == USER_STATE
        )
    else:
        where = and_(
            c.user_id.is_(None), c.chat_id == bindparam("app_name"), c.operation_type == APP_STATE
        )
    return select(c.id).where(where, _agent_unindexed(dialect) == bindparam("agent_id")).limit(1)


@functools.cache
def _holders(of_user: bool, dialect: str) -> Any:
    """The app's state holder and every user's, or (``of_user``) the app's and one user's."""
    c = conversations.c
    if not of_user:
        return select(c.id, c.user_id, c.operation_type).where(
            c.agent_id == bindparam("agent_id"), c.operation_type.in_([APP_STATE, USER_STATE])
        )
    # two lookups by the (user_id, chat_id) index
    return union_all(
        *(
            _holder(who, dialect).limit(None).add_columns(c.user_id, c.operation_type)
            for who in (False, True)
        )
    )


def _agent_unindexed(dialect: str) -> Any:
    """The conversations' agent column, on SQLite written ``+agent_id`` so that the planner
    does not walk the agent's every conversation by the agent index (it cannot tell the two
    indexes apart without statistics, which nothing gathers on SQLite) where the user index
    finds the few rows at once: a holder lookup read all 2,000 sessions of an app that way."""
    if dialect == "postgresql":
        return conversations.c.agent_id
    return type_coerce(literal_column("+conversations.agent_id"), Uuid())


def _session_agent(one_user: bool, dialect: str) -> Any:
    """The sessions' agent column to join on: for one user's sessions, not by the agent index
    (see :func:`_agent_unindexed`)."""
    return _agent_unindexed(dialect) if one_user else conversations.c.agent_id


@functools.cache
def _sessions(one_user: bool, dialect: str) -> Select[Any]:
    c = conversations.c
    query = (
        select(*_SESSION_COLUMNS)
        .select_from(conversations)
        .join(agents, agents.c.id == _session_agent(one_user, dialect))
        .where(agents.c.name == bindparam("app_name"), c.operation_type == SESSION)
        .order_by(c.updated_at, c.user_id, c.chat_id)
    )
    return query.where(c.user_id == bindparam("user_id")) if one_user else query


@functools.cache
def _sessions_state(one_user: bool, dialect: str) -> Select[Any]:
    c, s = conversations.c, conversation_states.c
    query = (
        select(s.conversation_id, s.state_key, s.state_value)
        .select_from(conversation_states)
        .join(conversations, c.id == s.conversation_id)
        .join(agents, agents.c.id == _session_agent(one_user, dialect))
        .where(
            agents.c.name == bindparam("app_name"),
            c.operation_type == SESSION,
            s.scope == OWN_SCOPE,
        )
    )
    return query.where(c.user_id == bindparam("user_id")) if one_user else query


_EVENTS = (
    select(*_EVENT_COLUMNS)
    .where(messages.c.conversation_id == bindparam("cid"))
    .order_by(messages.c.seq)
)
_NEWEST_EVENTS = (
    select(*_EVENT_COLUMNS)
    .where(messages.c.conversation_id == bindparam("cid"))
    .order_by(messages.c.seq.desc())
    .limit(bindparam("limit", type_=Integer))
)
_EVENTS_BEFORE = _NEWEST_EVENTS.where(messages.c.seq < bindparam("before", type_=Integer))
_OWN_STATE = select(conversation_states.c.state_key, conversation_states.c.state_value).where(
    conversation_states.c.conversation_id == bindparam("conversation_id"),
    conversation_states.c.scope == OWN_SCOPE,
)
# The statements of every event appended, built once (building one costs more than running it).
_SESSION = (
    select(*_SESSION_COLUMNS)
    .join(agents, agents.c.id == conversations.c.agent_id)
    .where(
        agents.c.name == bindparam("app_name"),
        conversations.c.user_id == bindparam("user_id"),
        conversations.c.chat_id == bindparam("session_id"),
        conversations.c.operation_type == SESSION,
    )
    .limit(1)
)


_SESSION_KEY = _SESSION.with_only_columns(conversations.c.id, conversations.c.agent_id)


class AdkStore(Repository[Sync]):
    """The adapter's SQL, on an open unit of work."""

    def __init__(self, uow: Unit) -> None:
        super().__init__(uow)

    # -- apps and holders ----------------------------------------------------------------------

    def app(self, app_name: str, *, create: bool) -> uuid.UUID | None:
        """The id of the app's agent; made first if ``create`` (else ``None`` when missing)."""
        query = select(agents.c.id).where(agents.c.name == app_name)
        found = self._id(query)
        if found is not None or not create:
            return found
        self._lock(f"adk-app\x1f{app_name}")
        found = self._id(query)
        if found is not None:
            return found
        made = self.uow.agents.create(
            AgentCreate(
                name=app_name,
                description="Google ADK app",
                metadata={"framework": "adk"},
                include_history=False,
            )
        )
        return made.id

    def holder(self, agent_id: uuid.UUID, app_name: str, user_id: str | None) -> uuid.UUID:
        """The conversation that holds the app's state (``user_id`` None) or a user's; made if
        missing."""
        query = _holder(user_id is not None, self.dialect)
        params = {"agent_id": agent_id, "app_name": app_name, "user_id": user_id}
        found = self._id(query, params)
        if found is not None:
            return found
        self._lock(f"adk-state\x1f{app_name}\x1f{user_id or ''}")
        found = self._id(query, params)
        if found is not None:
            return found
        kind = APP_STATE if user_id is None else USER_STATE
        title = f"ADK app state: {app_name}" if user_id is None else f"ADK user state: {app_name}"
        made = self.uow.conversations.create(
            ConversationCreate(
                agent_id=agent_id,
                user_id=user_id,
                chat_id=app_name if user_id is None else None,
                title=title[:500],
                operation_type=kind,
                metadata={"framework": "adk", "app_name": app_name},
            )
        )
        return made.id

    def _id(self, query: Select[Any], params: dict[str, Any] | None = None) -> uuid.UUID | None:
        found: uuid.UUID | None = self.conn.execute(query, params).scalar()
        return found

    def _lock(self, key: str) -> None:
        if self.dialect == "postgresql":
            self.conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key}
            )

    # -- sessions ------------------------------------------------------------------------------

    def session(self, app_name: str, user_id: str, session_id: str) -> SessionRow | None:
        """The session's conversation, or ``None``."""
        found = self.conn.execute(
            _SESSION, {"app_name": app_name, "user_id": user_id, "session_id": session_id}
        ).first()
        return None if found is None else SessionRow.of(found)

    def session_key(
        self, app_name: str, user_id: str, session_id: str
    ) -> tuple[uuid.UUID, uuid.UUID] | None:
        """The session's conversation id and its agent's, or ``None``: what an append needs, read
        by a statement compiled once and run on the driver (measured: a third of the CPU of the
        same read through SQLAlchemy's connection)."""
        params = {"app_name": app_name, "user_id": user_id, "session_id": session_id}
        found = prepared(_SESSION_KEY, self.conn.dialect).rows(self.conn, params)
        if not found:
            return None
        # as the driver returns them: a UUID on PostgreSQL, its hex text on SQLite
        return to_uuid(found[0][0]), to_uuid(found[0][1])

    def create_session(self, agent_id: uuid.UUID, user_id: str, session_id: str) -> SessionRow:
        made = self.uow.conversations.create(
            ConversationCreate(
                agent_id=agent_id,
                user_id=user_id,
                chat_id=session_id,
                operation_type=SESSION,
                metadata={"framework": "adk"},
            )
        )
        return SessionRow.of(made)

    def sessions(self, app_name: str, user_id: str | None) -> list[SessionRow]:
        """The app's sessions (one user's, if given), in ADK's order: oldest update first."""
        query = _sessions(user_id is not None, self.dialect)
        found = self.conn.execute(query, {"app_name": app_name, "user_id": user_id})
        return [SessionRow.of(row) for row in found]

    # -- state ---------------------------------------------------------------------------------

    def put_state(
        self,
        conversation_id: uuid.UUID,
        delta: Mapping[str, Any],
        *,
        conversation_checked: bool = False,
    ) -> None:
        """Write each key of ``delta`` (in key order, so concurrent writers lock rows in one
        order). ``conversation_checked``: this unit has just appended to the conversation, so it
        exists and its row is this unit's until the commit: it is not checked again."""
        self.uow.states.put_many(conversation_id, delta, conversation_checked=conversation_checked)

    def state(self, conversation_id: uuid.UUID) -> dict[str, Any]:
        """A session's own state."""
        found = self.conn.execute(_OWN_STATE, {"conversation_id": conversation_id})
        return {key: value for key, value in found}  # noqa: C416

    def sessions_state(self, app_name: str, user_id: str | None) -> dict[uuid.UUID, dict[str, Any]]:
        """The own states of the app's sessions (one user's, if given), by conversation."""
        query = _sessions_state(user_id is not None, self.dialect)
        found: dict[uuid.UUID, dict[str, Any]] = defaultdict(dict)
        for cid, key, value in self.conn.execute(query, {"app_name": app_name, "user_id": user_id}):
            found[cid][key] = value
        return found

    def lock_session(self, app_name: str, user_id: str, session_id: str) -> None:
        """Make concurrent creations of one session id take turns (PostgreSQL)."""
        self._lock(f"adk-session\x1f{app_name}\x1f{user_id}\x1f{session_id}")

    def shared_state(
        self, agent_id: uuid.UUID, app_name: str, user_id: str | None
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """The app's state, and its users' states by user (one user's if ``user_id`` is given)."""
        s = conversation_states.c
        holders = _holders(user_id is not None, self.dialect)
        params = {"agent_id": agent_id, "app_name": app_name, "user_id": user_id}
        # the holders first, then their states by the states' conversation key: joined in one
        # statement, a planner without statistics yet (a new database) may scan every state
        # instead; and most apps keep no shared state, so there is often nothing more to read
        held = {cid: (who, kind) for cid, who, kind in self.conn.execute(holders, params)}
        app: dict[str, Any] = {}
        users: dict[str, dict[str, Any]] = defaultdict(dict)
        if not held:
            return app, users
        query = select(s.conversation_id, s.state_key, s.state_value).where(
            s.conversation_id.in_(list(held)), s.scope == OWN_SCOPE
        )
        for cid, key, value in self.conn.execute(query):
            holder_user, kind = held[cid]
            if kind == APP_STATE:
                app[key] = value
            else:
                users[holder_user][key] = value
        return app, users

    # -- events --------------------------------------------------------------------------------

    def append(self, conversation_id: uuid.UUID, message: MessageCreate, at: datetime) -> None:
        """Store an event's message; the session's last update time becomes ``at`` (the
        event's, not the clock's) in the same statement."""
        self.uow.messages.append(conversation_id, message, conversation_updated_at=at)

    def append_at_once(
        self,
        conversation_id: uuid.UUID,
        message: MessageCreate,
        at: datetime,
        delta: Mapping[str, Any],
    ) -> bool:
        """PostgreSQL, on a unit in autocommit: a new event's message and its session-state keys
        as one transaction in one round trip (``BEGIN``, the append, each key, ``COMMIT``, sent
        together with the libpq pipeline's one ``Sync``) instead of four. Each key is written only
        if this message was stored, so ``False`` means nothing was written: the conversation does
        not exist, or the event is a retry (stored before), or the message has no ``client_id``
        or replies to another; :meth:`append` and :meth:`put_state` in a unit of their own then
        answer as ever.

        Raises:
            ValidationError: A malformed state key, or a value that is not storable JSON.
            TooLargeError: The message, or a value, exceeds the configured limits.
        """
        if message.client_id is None or message.reply_to_message_id is not None:
            return False  # not an event's message: the plain append knows what to do
        conn = self.conn
        limit = self.settings.max_metadata_bytes
        keys = []
        for key in sorted(delta):  # in key order: concurrent writers lock rows in one order
            check_json(delta[key], limit, "state_value")
            keys.append((state_key(key), delta[key]))
        append, params, message_id = self.uow.messages.pipelined_append(
            conversation_id, message, conversation_updated_at=at
        )
        upsert = prepared(_upsert_if_stored(), conn.dialect)
        driver: Any = conn.connection.driver_connection
        with _driver_errors(conn, driver), driver.pipeline():
            driver.execute("BEGIN")
            appended = append.run(conn, params)
            for key, value in keys:
                upsert.run(conn, {**_state_row(conversation_id, key, value), "mid": message_id})
            driver.execute("COMMIT")
        return appended.fetchone() is not None

    def events(
        self, conversation_id: uuid.UUID, *, limit: int | None, after: float | None
    ) -> list[Event]:
        """The session's events in order: the last ``limit``, and (``after``) only those after the
        last event older than ``after``, as ADK's in-memory service filters them."""
        if limit == 0:
            return []
        cid = conversation_id
        if after is None:
            if limit is None:
                return self._events(_EVENTS, {"cid": cid})
            return self._events(_NEWEST_EVENTS, {"cid": cid, "limit": limit})[::-1]
        newest_first: list[Event] = []
        page = PAGE if limit is None else min(limit, PAGE)
        before: int | None = None
        while True:
            params = {"cid": cid, "limit": page, "before": before}
            query = _NEWEST_EVENTS if before is None else _EVENTS_BEFORE
            rows = prepared(query, self.conn.dialect).rows(self.conn, params)
            for event in self._decoded(rows):
                if event.timestamp < after:
                    return newest_first[::-1]
                newest_first.append(event)
                if limit is not None and len(newest_first) >= limit:
                    return newest_first[::-1]
            if len(rows) < page:
                return newest_first[::-1]
            before = rows[-1][0]

    def _events(self, query: Select[Any], params: dict[str, Any]) -> list[Event]:
        return self._decoded(prepared(query, self.conn.dialect).rows(self.conn, params))

    def _decoded(self, rows: list[Any]) -> list[Event]:
        """Events from rows of ``_EVENT_COLUMNS`` as the driver returns them (read on the driver:
        a session's whole history is read on every turn). A message with no stored event (one
        added through agentkeep's own API) has its id and time decoded for the event made of
        it."""
        dialect = self.conn.dialect
        to_id = converter(messages.c.id, dialect)
        to_time = converter(messages.c.created_at, dialect)
        validate = Event.model_validate_json
        return [
            validate(stored)
            if stored is not None
            else message_event(to_id(mid), role, content, to_time(at))
            for _, stored, mid, role, content, at in rows
        ]

    # -- memory --------------------------------------------------------------------------------

    def remembered_events(self, agent_id: uuid.UUID, user_id: str) -> set[str]:
        """The ids of the events already kept as this app's memories of this user."""
        m = memories.c
        event_id = m.metadata["adk_event_id"].as_string()
        query = select(event_id).where(
            m.user_id == user_id, m.agent_id == agent_id, event_id.is_not(None)
        )
        return {value for (value,) in self.conn.execute(query)}

    def count_sessions(self, app_name: str) -> int:
        c = conversations.c
        query = (
            select(func.count())
            .select_from(conversations.join(agents, agents.c.id == c.agent_id))
            .where(agents.c.name == app_name, c.operation_type == SESSION)
        )
        return int(self.conn.scalar(query) or 0)


@functools.cache
def _upsert_if_stored() -> Insert:
    """A session-state key's upsert (``states.put_many``'s) that writes only if the message with
    id ``mid`` exists: sent with its append before the append's answer is back, it writes nothing
    when that append stored nothing."""
    s = conversation_states
    row = select(*(bindparam(f"v_{column.name}", type_=column.type) for column in s.c)).where(
        exists().where(messages.c.id == bindparam("mid", type_=messages.c.id.type))
    )
    statement = dialect_insert("postgresql", s).from_select([c.name for c in s.c], row)
    return statement.on_conflict_do_update(
        index_elements=[s.c.conversation_id, s.c.scope, s.c.state_key],
        set_=changed(
            {"state_value": statement.excluded.state_value},
            at=bindparam("v_updated_at", type_=s.c.updated_at.type),
        ),
    )


def _state_row(conversation_id: uuid.UUID, key: str, value: Any) -> dict[str, Any]:
    """The parameters of a session-state key's upsert (as ``states.put_many`` writes it)."""
    now = utcnow()
    return {
        "v_id": new_id(),
        "v_conversation_id": conversation_id,
        "v_persona_id": None,
        "v_module_id": None,
        "v_scope": OWN_SCOPE,
        "v_state_key": key,
        "v_state_value": JSON.NULL if value is None else value,  # JSON null, not SQL NULL
        "v_created_at": now,
        "v_updated_at": now,
    }


@contextmanager
def _driver_errors(conn: Connection, driver: Any) -> Iterator[None]:
    """Errors of a pipelined transaction: the driver's (which a pipeline reports only when it is
    synced) as domain errors, a lost connection invalidated, as for any statement; and the
    transaction, left open or failed, rolled back before the connection goes back to the pool."""
    error: type[Exception] = conn.dialect.loaded_dbapi.Error
    try:
        yield
    except BaseException as exc:
        # a lost connection is invalidated by driver_error; any other is rolled back here
        failed = driver_error(conn, driver, exc, PIPELINED) if isinstance(exc, error) else None
        open_ = not conn.invalidated and not driver.closed
        if open_ and driver.info.transaction_status != _IDLE:
            driver.rollback()
        if failed is None:
            raise
        raise failed from exc


PIPELINED = "BEGIN; <append>; <state keys>; COMMIT (pipelined)"
"""What an error of a pipelined append names as its statement."""
