"""The ADK adapter's append: what one ``append_event`` sends to the database, the session's update
time, retried and racing appends of one event, a session deleted under an append, and the
sessions the service remembers (deleted, or deleted and made again, elsewhere), on every
backend."""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("google.adk")

from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions.session import Session
from google.genai import types
from sqlalchemy import event as sa_event
from sqlalchemy import text

from agentkeep import Async, DatabaseManager
from agentkeep.db.changes import Change, Changes
from agentkeep.db.tables import conversations
from agentkeep.errors import AgentkeepError, TooLargeError
from agentkeep.integrations.adk import AgentkeepSessionService
from agentkeep.integrations.adk.keys import SessionKeys
from agentkeep.models.conversation import MessageCreate

pytestmark = pytest.mark.anyio


def _event(text_: str, **state: Any) -> Event:
    return Event(
        invocation_id="inv",
        author="user",
        content=types.Content(role="user", parts=[types.Part(text=text_)]),
        actions=EventActions(state_delta=state),
    )


def _texts(session: Session) -> list[str | None]:
    """The text of each of the session's events that has one, in order."""
    return [e.content.parts[0].text for e in session.events if e.content and e.content.parts]


async def _conversation_id(adb: DatabaseManager[Async], session: Session) -> uuid.UUID:
    (conversation,) = (
        await adb.conversations.list(user_id=session.user_id, chat_id=session.id)
    ).items
    return conversation.id


@contextmanager
def _sent(adb: DatabaseManager[Async]) -> Iterator[list[str]]:
    """What the store's connections send while the block runs: on SQLite each statement the
    library runs (``BEGIN`` and ``COMMIT`` included, not the FTS triggers' own statements); on
    PostgreSQL each round trip, as the statements it sends (``_round_trips``)."""
    engine = adb.service.engine
    sent: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        trace = Path(folder) / "libpq.trace"
        traced = trace.open("w")

        def check_out(dbapi_conn: Any, record: Any, proxy: Any) -> None:
            raw = getattr(dbapi_conn, "driver_connection", dbapi_conn)
            if hasattr(raw, "pgconn"):
                raw.pgconn.trace(traced.fileno())
            else:
                raw.set_trace_callback(sent.append)

        def check_in(dbapi_conn: Any, record: Any) -> None:
            raw = getattr(dbapi_conn, "driver_connection", dbapi_conn)
            if hasattr(raw, "pgconn"):
                raw.pgconn.untrace()
            else:
                raw.set_trace_callback(None)

        sa_event.listen(engine, "checkout", check_out)
        sa_event.listen(engine, "checkin", check_in)
        writer = adb.service.writer  # a SQLite file's writes keep theirs, not checked out again
        if writer is not None:
            check_out(writer.connection.driver_connection, None, None)
        try:
            yield sent
        finally:
            sa_event.remove(engine, "checkout", check_out)
            sa_event.remove(engine, "checkin", check_in)
            if adb.service.writer is not None:
                check_in(adb.service.writer.connection.driver_connection, None)
            traced.close()
            sent += _round_trips(trace.read_text())
            sent[:] = [s for s in sent if not s.startswith("--")]


def _round_trips(trace: str) -> list[str]:
    """The round trips in a libpq trace: the statements sent (each one's first word, or a simple
    query's text) until the client waits for the server (a ``Sync``, ``Flush`` or ``Query``
    followed by the server's answer)."""
    trips: list[str] = []
    statements: list[str] = []
    waiting = False
    for line in trace.splitlines():
        fields = line.split("\t")
        at = 1 if len(fields) > 3 and fields[1] in ("F", "B") else 0
        if len(fields) < at + 3 or fields[at] not in ("F", "B"):
            continue  # a statement's text goes on
        name, rest = fields[at + 2], fields[at + 3] if len(fields) > at + 3 else ""
        if fields[at] == "B":
            if waiting:
                trips.append(" + ".join(statements))
                statements, waiting = [], False
        elif name == "Parse":
            words = rest.split('"', 3)[-1].split()  # the text after the statement's name
            statements.append(words[0].strip('"') if words else "?")
        elif name == "Query":
            statements.append(rest.strip(' "'))
            waiting = True
        elif name in ("Sync", "Flush"):
            waiting = True
    return trips


class TestAppendCost:
    async def test_an_append_to_a_remembered_session_is_one_round_trip_on_postgresql(
        self, adb: DatabaseManager[Async], backend: str
    ) -> None:
        service = AgentkeepSessionService(adb)
        session = await service.create_session(app_name="app", user_id="u")
        await service.append_event(session, _event("first", turn=0))
        with _sent(adb) as sent:
            await service.append_event(session, _event("second", turn=1, mood="calm"))
        if backend == "postgresql":
            # BEGIN, the append (counters and update time), each key, COMMIT: one Sync
            assert sent == ["BEGIN + WITH + INSERT + INSERT + COMMIT"], sent
        else:
            # the conversation is written once (the append) and the session is not looked up:
            # the service remembers its conversation
            updates = [s for s in sent if s.startswith("UPDATE conversations")]
            reads = [s for s in sent if s.startswith("SELECT conversations.id")]
            assert (len(updates), len(reads)) == (1, 0), sent
            assert sent[0].startswith("BEGIN")
            assert sent[-1] == "COMMIT"
            assert not any("SAVEPOINT" in s for s in sent)
        got = await service.get_session(app_name="app", user_id="u", session_id=session.id)
        assert got is not None
        assert _texts(got) == ["first", "second"]
        assert (got.state["turn"], got.state["mood"]) == (1, "calm")

    async def test_a_session_this_service_has_not_seen_is_looked_up_first(
        self, adb: DatabaseManager[Async], backend: str
    ) -> None:
        if backend != "postgresql":
            pytest.skip("round trips are PostgreSQL's")
        session = await AgentkeepSessionService(adb).create_session(app_name="app", user_id="u")
        service = AgentkeepSessionService(adb)
        with _sent(adb) as sent:
            await service.append_event(session, _event("first", turn=0))
        assert sent == ["SELECT", "BEGIN + WITH + INSERT + COMMIT"], sent

    async def test_a_retried_event_and_app_or_user_keys_take_a_unit_of_their_own(
        self, adb: DatabaseManager[Async], backend: str
    ) -> None:
        if backend != "postgresql":
            pytest.skip("round trips are PostgreSQL's")
        service = AgentkeepSessionService(adb)
        session = await service.create_session(app_name="app", user_id="u")
        event = _event("once", turn=1)
        await service.append_event(session, event)
        with _sent(adb) as sent:
            await service.append_event(session, event.model_copy(deep=True))
        # the one-round-trip attempt stores nothing; the unit finds the event stored and
        # writes the key as ADK's services do
        assert sent[0] == "BEGIN + WITH + INSERT + COMMIT", sent
        assert [s.split()[0] for s in sent[1:3]] == ["BEGIN", "SELECT"], sent
        with _sent(adb) as sent:
            await service.append_event(session, _event("shared", **{"app:mode": "x"}))
        # a unit: the append to the conversation remembered, then the app's holder looked up
        assert [s.split()[0] for s in sent[:3]] == ["BEGIN", "WITH", "SELECT"], sent


class TestAppendedEvents:
    async def test_the_session_takes_the_events_time_not_the_clocks(
        self, adb: DatabaseManager[Async]
    ) -> None:
        service = AgentkeepSessionService(adb)
        session = await service.create_session(app_name="app", user_id="u")
        at = datetime(2024, 5, 17, 9, 30, 15, 123456, tzinfo=UTC).timestamp()
        event = _event("back in time", turn=1)
        event.timestamp = at
        await service.append_event(session, event)
        assert session.last_update_time == at
        conversation = await adb.conversations.get(await _conversation_id(adb, session))
        assert conversation.updated_at.timestamp() == at
        assert conversation.message_count == 1
        got = await service.get_session(app_name="app", user_id="u", session_id=session.id)
        assert got is not None
        assert got.last_update_time == at
        (listed,) = (await service.list_sessions(app_name="app", user_id="u")).sessions
        assert listed.last_update_time == at

    async def test_a_plain_append_still_takes_the_clocks_time(
        self, adb: DatabaseManager[Async]
    ) -> None:
        service = AgentkeepSessionService(adb)
        session = await service.create_session(app_name="app", user_id="u")
        cid = await _conversation_id(adb, session)
        before = datetime.now(UTC)
        await adb.messages.append(cid, MessageCreate(role="user", content="hi"))
        conversation = await adb.conversations.get(cid)
        assert conversation.updated_at >= before

    async def test_a_retried_event_is_stored_once_and_counted_once(
        self, adb: DatabaseManager[Async]
    ) -> None:
        service = AgentkeepSessionService(adb)
        session = await service.create_session(app_name="app", user_id="u")
        event = _event("once", turn=1)
        await service.append_event(session, event)
        stale = await service.get_session(app_name="app", user_id="u", session_id=session.id)
        assert stale is not None
        await service.append_event(stale, event.model_copy(deep=True))
        await service.append_event(session, _event("next", turn=2))
        cid = await _conversation_id(adb, session)
        stored = await adb.messages.last(cid, 10)
        assert [(m.seq, m.content) for m in stored] == [(1, "once"), (2, "next")]
        assert (await adb.conversations.get(cid)).message_count == 2
        agent = await adb.agents.find_by_name("app")
        assert agent is not None
        assert agent.message_count == 2

    async def test_racing_appends_of_one_event_never_fail_and_store_it_once(
        self, adb: DatabaseManager[Async]
    ) -> None:
        service = AgentkeepSessionService(adb)
        session = await service.create_session(app_name="app", user_id="u")
        event = _event("raced", turn=1)
        copies = [session.model_copy(deep=True) for _ in range(12)]
        results = await asyncio.gather(
            *(service.append_event(c, event.model_copy(deep=True)) for c in copies),
            return_exceptions=True,
        )
        assert [r for r in results if isinstance(r, BaseException)] == []
        await service.append_event(session, _event("after", turn=2))
        cid = await _conversation_id(adb, session)
        stored = await adb.messages.last(cid, 20)
        assert [(m.seq, m.content) for m in stored] == [(1, "raced"), (2, "after")]
        assert (await adb.conversations.get(cid)).message_count == 2
        agent = await adb.agents.find_by_name("app")
        assert agent is not None
        assert agent.message_count == 2
        got = await service.get_session(app_name="app", user_id="u", session_id=session.id)
        assert got is not None
        assert got.state["turn"] == 2

    async def test_a_session_deleted_while_the_append_waits_is_not_found(
        self, adb: DatabaseManager[Async], backend: str
    ) -> None:
        if backend != "postgresql":
            pytest.skip("SQLite runs one write at a time: a delete cannot come in between")
        service = AgentkeepSessionService(adb)
        session = await service.create_session(app_name="app", user_id="u")
        cid = await _conversation_id(adb, session)
        engine = adb.service.engine
        deleting = engine.connect()
        try:
            deleting.execute(text("DELETE FROM conversations WHERE id = :id"), {"id": cid})
            pid = int(deleting.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
            appending = asyncio.ensure_future(
                service.append_event(session, _event("too late", turn=1))
            )
            await asyncio.to_thread(_wait_until_blocked_by, engine, pid)
            deleting.commit()
            with pytest.raises(SessionNotFoundError):
                await appending
        finally:
            deleting.close()
        assert await service.get_session(app_name="app", user_id="u", session_id=session.id) is None


def _wait_until_blocked_by(engine: Any, pid: int) -> None:
    """Until another session waits for a lock that ``pid`` holds."""
    deadline = time.monotonic() + 10
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"
                ),
                {"pid": pid},
            ).scalar()
            conn.rollback()
            if waiting:
                return
            time.sleep(0.01)
    raise AssertionError("the append never waited for the delete")


async def _delete_unseen(adb: DatabaseManager[Async], session: Session) -> None:
    """Delete the session's conversation as another process would: this process's caches hear
    nothing of it."""
    cid = await _conversation_id(adb, session)

    def delete() -> None:
        with adb.service.unit("write") as conn:
            conn.execute(conversations.delete().where(conversations.c.id == cid))

    await asyncio.to_thread(delete)


class TestRememberedSessions:
    """The service remembers which conversation holds a session; what it remembers may be out
    of date, and an append still answers as a lookup would."""

    @pytest.mark.parametrize("how", ["another service", "the Python API", "another process"])
    async def test_a_session_deleted_elsewhere_is_not_found(
        self, adb: DatabaseManager[Async], how: str
    ) -> None:
        service = AgentkeepSessionService(adb)
        session = await service.create_session(app_name="app", user_id="u")
        await service.append_event(session, _event("first", turn=1))
        if how == "another service":
            await AgentkeepSessionService(adb).delete_session(
                app_name="app", user_id="u", session_id=session.id
            )
        elif how == "the Python API":
            await adb.conversations.delete(await _conversation_id(adb, session))
        else:
            await _delete_unseen(adb, session)
        with pytest.raises(SessionNotFoundError):
            await service.append_event(session, _event("too late", turn=2))
        assert await service.get_session(app_name="app", user_id="u", session_id=session.id) is None
        assert await adb.messages.count() == 0

    @pytest.mark.parametrize("how", ["another service", "the Python API", "another process"])
    async def test_a_session_deleted_and_made_again_with_the_same_ids_takes_the_event(
        self, adb: DatabaseManager[Async], how: str
    ) -> None:
        service = AgentkeepSessionService(adb)
        other = AgentkeepSessionService(adb)
        session = await service.create_session(app_name="app", user_id="u", state={"old": 1})
        await service.append_event(session, _event("old", turn=1))
        old_cid = await _conversation_id(adb, session)
        if how == "another service":
            await other.delete_session(app_name="app", user_id="u", session_id=session.id)
        elif how == "the Python API":
            await adb.conversations.delete(old_cid)
        else:
            await _delete_unseen(adb, session)
        await other.create_session(app_name="app", user_id="u", session_id=session.id)
        new_cid = await _conversation_id(adb, session)
        assert new_cid != old_cid

        await service.append_event(session, _event("new", turn=2))
        await service.append_event(session, _event("newer", turn=3))
        got = await other.get_session(app_name="app", user_id="u", session_id=session.id)
        assert got is not None
        assert _texts(got) == ["new", "newer"]
        assert got.state == {"turn": 3}
        stored = await adb.messages.last(new_cid, 10)
        assert [(m.seq, m.content) for m in stored] == [(1, "new"), (2, "newer")]
        assert (await adb.conversations.get(new_cid)).message_count == 2

    async def test_concurrent_appends_of_distinct_events_are_all_stored_in_order(
        self, adb: DatabaseManager[Async]
    ) -> None:
        service = AgentkeepSessionService(adb)
        session = await service.create_session(app_name="app", user_id="u")
        copies = [session.model_copy(deep=True) for _ in range(24)]
        results = await asyncio.gather(
            *(
                service.append_event(c, _event(f"event {i}", **{f"k{i}": i, "last": i}))
                for i, c in enumerate(copies)
            ),
            return_exceptions=True,
        )
        assert [r for r in results if isinstance(r, BaseException)] == []
        cid = await _conversation_id(adb, session)
        stored = await adb.messages.last(cid, 50)
        assert [m.seq for m in stored] == list(range(1, 25))
        assert sorted(m.content for m in stored) == sorted(f"event {i}" for i in range(24))
        assert (await adb.conversations.get(cid)).message_count == 24
        got = await service.get_session(app_name="app", user_id="u", session_id=session.id)
        assert got is not None
        assert {key: got.state[key] for key in got.state if key.startswith("k")} == {
            f"k{i}": i for i in range(24)
        }
        assert got.state["last"] in range(24)

    async def test_an_event_too_large_stores_nothing_and_the_session_goes_on(
        self, adb: DatabaseManager[Async]
    ) -> None:
        service = AgentkeepSessionService(adb)
        session = await service.create_session(app_name="app", user_id="u")
        await service.append_event(session, _event("first", turn=1))
        huge = "x" * (adb.settings.max_metadata_bytes + 1)
        with pytest.raises(TooLargeError):
            await service.append_event(session, _event("big", turn=2, blob=huge))
        await service.append_event(session, _event("after", turn=3))
        got = await service.get_session(app_name="app", user_id="u", session_id=session.id)
        assert got is not None
        assert _texts(got) == ["first", "after"]
        assert got.state == {"turn": 3}


class TestRefusedInOneRoundTrip:
    async def test_a_key_the_database_refuses_stores_nothing_of_the_event(
        self, adb: DatabaseManager[Async], backend: str
    ) -> None:
        if backend != "postgresql":
            pytest.skip("the one-round-trip append is PostgreSQL's")
        engine = adb.service.engine
        check = (
            "ALTER TABLE conversation_states ADD CONSTRAINT test_no_boom "
            "CHECK (state_key <> 'boom')"
        )
        with engine.begin() as conn:
            conn.execute(text(check))
        try:
            service = AgentkeepSessionService(adb)
            session = await service.create_session(app_name="app", user_id="u")
            await service.append_event(session, _event("first", turn=1))
            with pytest.raises(AgentkeepError):
                await service.append_event(session, _event("refused", turn=2, boom=1))
            await service.append_event(session, _event("after", turn=3))
        finally:
            with engine.begin() as conn:
                conn.execute(text("ALTER TABLE conversation_states DROP CONSTRAINT test_no_boom"))
        got = await service.get_session(app_name="app", user_id="u", session_id=session.id)
        assert got is not None
        texts = _texts(got)
        assert texts == ["first", "after"]
        assert got.state == {"turn": 3}
        cid = await _conversation_id(adb, session)
        assert (await adb.conversations.get(cid)).message_count == 2


class TestSessionKeys:
    def test_the_least_recently_used_session_is_forgotten_first(self) -> None:
        keys = SessionKeys(Changes(), size=2)
        a, b, c = (uuid.uuid4(), uuid.uuid4()), (uuid.uuid4(), uuid.uuid4()), (uuid.uuid4(),) * 2
        keys.put(("app", "u", "a"), a)
        keys.put(("app", "u", "b"), b)
        assert keys.get(("app", "u", "a")) == a  # a is now the most recently used
        keys.put(("app", "u", "c"), c)
        assert keys.get(("app", "u", "b")) is None
        assert (keys.get(("app", "u", "a")), keys.get(("app", "u", "c"))) == (a, c)
        assert len(keys) == 2

    def test_a_conversation_changed_in_the_store_is_forgotten(self) -> None:
        changes = Changes()
        keys = SessionKeys(changes)
        found = (uuid.uuid4(), uuid.uuid4())
        keys.put(("app", "u", "s"), found)
        keys.put(("app", "u", "t"), (uuid.uuid4(), found[1]))
        changes.publish([Change("agent", found[0]), Change("conversation", found[0])])
        assert keys.get(("app", "u", "s")) is None
        assert keys.get(("app", "u", "t")) is not None
        keys.close()
        keys.put(("app", "u", "s"), found)
        changes.publish([Change("conversation", found[0])])
        assert keys.get(("app", "u", "s")) == found  # closed: it hears nothing more
