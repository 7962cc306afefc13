"""Group commit: appends from many threads at once share commits on a SQLite file
(``db.group_commit``), and each still gets exactly what it would get alone: its own message or its
own error, a gapless sequence number, the counters, idempotent retries, and only once committed.

The same tests run on PostgreSQL and the in-memory store, which do not batch: the behaviour is the
same everywhere. On a SQLite file, ``_together`` makes its appends one batch: it holds the writer
lock until all of them are queued, so the first one leads and takes the others into its commit.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import Connection

from agentkeep import (
    AgentCreate,
    AgentkeepError,
    Async,
    ConversationCreate,
    DatabaseManager,
    Message,
    MessageCreate,
    NotFoundError,
    Settings,
    StorageError,
    Sync,
    TooLargeError,
    connect_sync,
)
from agentkeep.db.group_commit import GroupCommit
from agentkeep.db.service import DatabaseService

DEADLINE = 60.0  # seconds; only reached when a write was never released (a loaded disk can
# take tens of milliseconds an fsync, and 16 writers may need a dozen of them)


def _message(content: str = "x", client_id: str | None = None) -> MessageCreate:
    return MessageCreate(role="user", content=content, client_id=client_id)


def _wait_until(condition: Callable[[], bool]) -> None:
    give_up = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < give_up, "the writes never queued"
        time.sleep(0.001)


def _in_threads(
    calls: list[Callable[[], Any]], hold: tuple[threading.Lock, Callable[[], bool]] | None = None
) -> list[Any]:
    """Run each call in its own thread; each result, or the exception it raised. ``hold``: a lock
    to hold from before they start until the condition is true (e.g. all of them are queued)."""
    outcomes: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            outcomes[i] = calls[i]()
        except Exception as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(calls))]
    if hold is None:
        for thread in threads:
            thread.start()
    else:
        lock, condition = hold
        with lock:
            for thread in threads:
                thread.start()
            _wait_until(condition)
    for thread in threads:
        thread.join(timeout=DEADLINE)
        assert not thread.is_alive(), "a write was never released"
    return outcomes


def _together(
    db: DatabaseManager[Sync], calls: list[Callable[[], Any]], *, queued: int | None = None
) -> list[Any]:
    """Run the calls at once; on a SQLite file as one batch of the ``queued`` (default: all) that
    reach the queue."""
    group, lock = db.service.group_commit, db.service.writer_lock
    if group is None or lock is None:
        return _in_threads(calls)
    expected = len(calls) if queued is None else queued
    return _in_threads(calls, (lock, partial(_has_waiting, group, expected)))


@contextmanager
def _commits(service: DatabaseService) -> Iterator[list[int]]:
    """Counts the commits of write transactions while inside: on a SQLite file, the ``COMMIT``
    statements its writer connection runs (it is open: the block follows a write). Elsewhere
    nothing is counted (nothing is batched there)."""
    count = [0]
    writer = service.writer
    if writer is None:
        yield count
        return
    driver: sqlite3.Connection = writer.connection.driver_connection  # type: ignore[assignment]

    def traced(statement: str) -> None:
        if statement == "COMMIT":
            count[0] += 1

    driver.set_trace_callback(traced)
    try:
        yield count
    finally:
        driver.set_trace_callback(None)


def _batched(db: DatabaseManager[Sync]) -> bool:
    return db.service.group_commit is not None


def _assert_dense(db: DatabaseManager[Sync], cid: uuid.UUID, total: int) -> list[Message]:
    history = db.messages.last(cid, max(total, 1))
    assert [m.seq for m in history] == list(range(1, total + 1))
    conversation = db.conversations.get(cid)
    assert conversation.message_count == total
    if total:
        assert conversation.last_message_at == history[-1].created_at
    return history


class TestOneBatch:
    def test_each_append_gets_its_own_message_and_they_share_one_commit(
        self, db: DatabaseManager[Sync]
    ) -> None:
        agent = db.agents.create(AgentCreate(name="batcher"))
        cids = [
            db.conversations.create(ConversationCreate(user_id="u", agent_id=agent.id)).id
            for _ in range(4)
        ]
        sent = [(cids[i % 4], f"grouped message {i}") for i in range(12)]
        with _commits(db.service) as commits:
            stored = _together(
                db, [partial(db.messages.append, cid, _message(text)) for cid, text in sent]
            )
        if _batched(db):
            assert commits == [1]
        assert [(m.conversation_id, m.content) for m in stored] == sent
        for cid in cids:
            history = _assert_dense(db, cid, 3)
            mine = {m.id: m for m in stored if m.conversation_id == cid}
            assert {m.id: m for m in history} == mine  # what each was told is what is stored
        assert db.agents.get(agent.id).message_count == 12
        assert len(db.messages.search("grouped message")) == 12  # the FTS triggers fired

    def test_an_append_to_a_missing_conversation_fails_alone(
        self, db: DatabaseManager[Sync]
    ) -> None:
        cid = db.conversations.create(ConversationCreate(user_id="u")).id
        targets = [cid, uuid.uuid4(), cid, uuid.uuid4(), cid]
        outcomes = _together(db, [partial(db.messages.append, c, _message()) for c in targets])
        for target, outcome in zip(targets, outcomes, strict=True):
            if target == cid:
                assert isinstance(outcome, Message)
            else:
                assert isinstance(outcome, NotFoundError)
                assert outcome.field == "conversation_id"
        _assert_dense(db, cid, 3)

    def test_retries_of_one_client_id_store_one_message_returned_to_each(
        self, db: DatabaseManager[Sync]
    ) -> None:
        cid = db.conversations.create(ConversationCreate(user_id="u")).id
        sent = [_message("once", "turn-1")] * 4 + [_message("other")] * 2
        outcomes = _together(db, [partial(db.messages.append, cid, m) for m in sent])
        retried = {m.id for m, s in zip(outcomes, sent, strict=True) if s.client_id}
        assert len(retried) == 1
        history = _assert_dense(db, cid, 3)
        assert sorted(m.content for m in history) == ["once", "other", "other"]

    def test_content_over_the_limit_fails_alone(self, db: DatabaseManager[Sync]) -> None:
        cid = db.conversations.create(ConversationCreate(user_id="u")).id
        huge = "x" * (db.settings.max_content_bytes + 1)
        contents = ["a", huge, "b", "c"]
        outcomes = _together(db, [partial(db.messages.append, cid, _message(t)) for t in contents])
        assert isinstance(outcomes[1], TooLargeError)
        assert sorted(m.content for m in _assert_dense(db, cid, 3)) == ["a", "b", "c"]

    def test_an_append_the_database_rejects_fails_alone_and_takes_no_number(
        self, db: DatabaseManager[Sync], backend: str
    ) -> None:
        cid = db.conversations.create(ConversationCreate(user_id="u")).id
        contents = ["a", "b", "boom", "c", "d"]
        with _rejecting(db, backend, "boom"):
            outcomes = _together(
                db, [partial(db.messages.append, cid, _message(t)) for t in contents]
            )
        assert isinstance(outcomes[2], AgentkeepError)
        assert "boom rejected" in str(outcomes[2])
        history = _assert_dense(db, cid, 4)
        assert sorted(m.content for m in history) == ["a", "b", "c", "d"]
        assert {m.id for m in history} == {o.id for o in outcomes if isinstance(o, Message)}


@contextmanager
def _rejecting(db: DatabaseManager[Sync], backend: str, content: str) -> Iterator[None]:
    """A trigger that makes the database reject a message with this content (after the append
    has bumped the conversation's counters)."""
    if backend == "postgresql":
        create = [
            "CREATE FUNCTION reject_message() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.content = '{content}' THEN RAISE EXCEPTION '{content} rejected'; END IF; "
            "RETURN NEW; END $$",
            "CREATE TRIGGER reject_message BEFORE INSERT ON messages "
            "FOR EACH ROW EXECUTE FUNCTION reject_message()",
        ]
        drop = ["DROP TRIGGER reject_message ON messages", "DROP FUNCTION reject_message()"]
    else:
        create = [
            "CREATE TRIGGER reject_message BEFORE INSERT ON messages "
            f"WHEN NEW.content = '{content}' BEGIN SELECT RAISE(ABORT, '{content} rejected'); END"
        ]
        drop = ["DROP TRIGGER reject_message"]
    with db.service.unit("write") as conn:
        for statement in create:
            conn.exec_driver_sql(statement)
    try:
        yield
    finally:
        with db.service.unit("write") as conn:
            for statement in drop:
                conn.exec_driver_sql(statement)


@pytest.fixture
def file_db(sqlite_template: Path, tmp_path: Path) -> Iterator[DatabaseManager[Sync]]:
    """A store on a SQLite file: the backend that batches."""
    path = tmp_path / "agentkeep.db"
    path.write_bytes(sqlite_template.read_bytes())
    db = connect_sync(Settings(database_url=f"sqlite+pysqlite:///{path}", auto_migrate=False))
    yield db
    db.close()


class TestOnASqliteFile:
    def test_a_failing_commit_fails_every_append_of_the_batch_and_stores_none(
        self, file_db: DatabaseManager[Sync], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        cid = file_db.conversations.create(ConversationCreate(user_id="u")).id
        dialect = file_db.service.engine.dialect
        real_commit = dialect.do_commit

        def fail_once(dbapi_connection: Any) -> None:
            monkeypatch.setattr(dialect, "do_commit", real_commit)
            raise sqlite3.OperationalError("disk I/O error")

        monkeypatch.setattr(dialect, "do_commit", fail_once)
        outcomes = _together(
            file_db, [partial(file_db.messages.append, cid, _message(str(i))) for i in range(4)]
        )
        assert all(isinstance(o, StorageError) for o in outcomes), outcomes
        assert "disk I/O error" in str(outcomes[0])
        assert file_db.messages.count(cid) == 0
        assert file_db.conversations.get(cid).message_count == 0
        assert file_db.messages.append(cid, _message("after")).seq == 1

    def test_an_append_is_acknowledged_only_once_committed(
        self, file_db: DatabaseManager[Sync]
    ) -> None:
        cid = file_db.conversations.create(ConversationCreate(user_id="u")).id
        path = file_db.service.url.database or ""

        def append_and_look_from_another_connection(i: int) -> bool:
            stored = file_db.messages.append(cid, _message(str(i)))
            other = sqlite3.connect(path)
            try:
                found = other.execute("SELECT 1 FROM messages WHERE id = ?", (stored.id.hex,))
                return found.fetchone() is not None
            finally:
                other.close()

        seen = _together(
            file_db, [partial(append_and_look_from_another_connection, i) for i in range(6)]
        )
        assert seen == [True] * 6

    def test_a_single_append_commits_alone(self, file_db: DatabaseManager[Sync]) -> None:
        cid = file_db.conversations.create(ConversationCreate(user_id="u")).id
        with _commits(file_db.service) as commits:
            assert file_db.messages.append(cid, _message()).seq == 1
        assert commits == [1]


class TestOutsideTheBatches:
    def test_appends_inside_a_unit_of_work_are_part_of_it(
        self, db: DatabaseManager[Sync], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        cid = db.conversations.create(ConversationCreate(user_id="u")).id
        if db.service.group_commit is not None:

            def not_batched(work: Any) -> Any:
                raise AssertionError("an append inside a unit of work was batched")

            monkeypatch.setattr(db.service.group_commit, "run", not_batched)

        def fail() -> None:
            with db.unit("write") as uow:
                uow.messages.append(cid, _message("rolled back"))
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            fail()
        with db.unit("write") as uow:
            assert uow.messages.append(cid, _message("kept")).seq == 1
            assert uow.messages.append(cid, _message("kept too")).seq == 2
        assert [m.content for m in _assert_dense(db, cid, 2)] == ["kept", "kept too"]


THREADS = 16
PER_THREAD = 15


class TestManyClients:
    def test_sixteen_threads_to_their_own_and_to_one_shared_conversation(
        self, db: DatabaseManager[Sync]
    ) -> None:
        agent = db.agents.create(AgentCreate(name="busy"))
        own = [
            db.conversations.create(ConversationCreate(user_id="u", agent_id=agent.id)).id
            for _ in range(THREADS // 2)
        ]
        shared = db.conversations.create(ConversationCreate(user_id="u", agent_id=agent.id)).id
        targets = [*own, *[shared] * (THREADS // 2)]
        start = threading.Barrier(THREADS)

        def append_many(worker: int) -> list[int]:
            start.wait()
            cid = targets[worker]
            return [
                db.messages.append(cid, _message(f"{worker}:{i}")).seq for i in range(PER_THREAD)
            ]

        seqs = _in_threads([partial(append_many, w) for w in range(THREADS)])
        for mine in seqs:  # in the order each thread was told, its messages are in order
            assert mine == sorted(mine)
        for cid in own:
            _assert_dense(db, cid, PER_THREAD)
        history = _assert_dense(db, shared, PER_THREAD * THREADS // 2)
        for worker in range(THREADS // 2, THREADS):
            assert [history[s - 1].content for s in seqs[worker]] == [
                f"{worker}:{i}" for i in range(PER_THREAD)
            ]
        assert db.agents.get(agent.id).message_count == THREADS * PER_THREAD

    @pytest.mark.anyio
    async def test_sixteen_async_tasks(self, adb: DatabaseManager[Async]) -> None:
        cids = [
            (await adb.conversations.create(ConversationCreate(user_id="u"))).id
            for _ in range(THREADS)
        ]
        told: dict[uuid.UUID, list[int]] = {cid: [] for cid in cids}

        async def append_many(cid: uuid.UUID) -> None:
            for i in range(PER_THREAD):
                told[cid].append((await adb.messages.append(cid, _message(str(i)))).seq)

        with anyio.fail_after(DEADLINE):
            async with anyio.create_task_group() as tasks:
                for cid in cids:
                    tasks.start_soon(append_many, cid)
        for cid in cids:
            assert told[cid] == list(range(1, PER_THREAD + 1))
            history = await adb.messages.last(cid, PER_THREAD)
            assert [m.content for m in history] == [str(i) for i in range(PER_THREAD)]
            assert (await adb.conversations.get(cid)).message_count == PER_THREAD


@pytest.fixture
def service(tmp_path: Path) -> Iterator[DatabaseService]:
    service = DatabaseService(
        Settings(database_url=f"sqlite+pysqlite:///{tmp_path / 'q.db'}", sqlite_busy_timeout_ms=300)
    )
    with service.unit("write") as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    yield service
    service.dispose()


def _group(service: DatabaseService, max_batch: int) -> GroupCommit:
    return GroupCommit(lambda wait: service.unit("write", wait=wait), wait=0.3, max_batch=max_batch)


def _has_waiting(group: GroupCommit, n: int) -> bool:
    return group.waiting == n


def _insert(x: int) -> Callable[[Connection], int]:
    def work(conn: Connection) -> int:
        conn.exec_driver_sql("INSERT INTO t VALUES (?)", (x,))
        return x

    return work


def _stored(service: DatabaseService) -> list[int]:
    with service.unit("read") as conn:
        return sorted(x for (x,) in conn.exec_driver_sql("SELECT x FROM t"))


class TestTheQueue:
    def test_a_batch_takes_at_most_max_batch_writes(self, service: DatabaseService) -> None:
        group = _group(service, max_batch=2)
        lock = service.writer_lock
        assert lock is not None
        with _commits(service) as commits:
            done = _in_threads(
                [partial(group.run, _insert(x)) for x in range(5)],
                (lock, partial(_has_waiting, group, 5)),
            )
        assert done == list(range(5))
        assert commits == [3]
        assert _stored(service) == list(range(5))

    def test_each_write_waits_for_the_writer_lock_at_most_the_busy_timeout(
        self, service: DatabaseService
    ) -> None:
        group = _group(service, max_batch=64)
        lock = service.writer_lock
        assert lock is not None
        with lock:  # another writer that does not finish in time
            started = time.monotonic()
            outcomes = _in_threads([partial(group.run, _insert(x)) for x in range(5)])
            waited = time.monotonic() - started
        assert all(isinstance(o, StorageError) and "locked" in str(o) for o in outcomes)
        assert waited < 1.2  # 0.3 s from when each was queued, not one after the other (1.5 s)
        assert group.run(_insert(7)) == 7
        assert _stored(service) == [7]

    def test_a_waiter_that_is_interrupted_leaves_the_queue(
        self, service: DatabaseService, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Interrupted once it is its turn to lead: the next write leads instead."""
        from agentkeep.db import group_commit

        group = _group(service, max_batch=1)
        lock = service.writer_lock
        assert lock is not None

        class InterruptedOnWaking(threading.Event):
            def wait(self, timeout: float | None = None) -> bool:
                super().wait(timeout)
                raise KeyboardInterrupt

        class Write(group_commit._Write[Any]):
            def __init__(self, work: Any, deadline: float) -> None:
                super().__init__(work, deadline)
                if threading.current_thread().name == "interrupted":
                    self.wake = InterruptedOnWaking()

        monkeypatch.setattr(group_commit, "_Write", Write)
        interrupted: list[BaseException] = []

        def run_interrupted() -> None:
            try:
                group.run(_insert(2))
            except KeyboardInterrupt as exc:
                interrupted.append(exc)

        third: list[int] = []
        threads = [
            threading.Thread(target=group.run, args=(_insert(1),)),
            threading.Thread(target=run_interrupted, name="interrupted"),
            threading.Thread(target=lambda: third.append(group.run(_insert(3)))),
        ]
        with lock:  # queued in this order: the first leads a batch of one, the second is next
            for queued, thread in enumerate(threads, start=1):
                thread.start()
                _wait_until(partial(_has_waiting, group, queued))
        for thread in threads:
            thread.join(timeout=DEADLINE)
            assert not thread.is_alive(), "the queue was left without a leader"
        assert len(interrupted) == 1
        assert third == [3]
        assert group.waiting == 0
        assert _stored(service) == [1, 3]
