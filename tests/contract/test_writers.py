"""Writers in one process: each kind of unit of work does what it says, SQLite writers queue on
the service's writer lock, and every way a write can end (commit, error, rollback) releases it.

A lock that is not released shows as a write that never finishes, so every "the next write goes
through" check runs that write in another thread and fails if it has not finished in 10 s.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import text

from agentkeep import (
    Async,
    ConflictError,
    ConversationCreate,
    DatabaseManager,
    MessageCreate,
    NotFoundError,
    PersonaCreate,
    Settings,
    StorageError,
    Sync,
    Unit,
)
from agentkeep.db.service import DatabaseService, Intent
from statements import watched

T = TypeVar("T")

KINDS: list[tuple[Intent, bool]] = [(i, s) for i in ("read", "write") for s in (False, True)]
"""Every kind of unit: (intent, single)."""
THREADS = 16
PER_THREAD = 20
DEADLINE = 10.0  # seconds; only ever reached when a lock was left held


def _in_other_thread(work: Callable[[], T]) -> T:
    """Run ``work`` in a new thread; fail if it is still waiting after ``DEADLINE`` seconds."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append((True, work()))
        except BaseException as exc:
            outcome.append((False, exc))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=DEADLINE)
    assert not thread.is_alive(), "the write never finished: a lock was left held"
    ok, value = outcome[0]
    if not ok:
        raise value
    result: T = value
    return result


def _message(content: str = "x") -> MessageCreate:
    return MessageCreate(role="user", content=content)


def _persona(name: str) -> PersonaCreate:
    return PersonaCreate(name=name, template="You are {name}.")


class TestManyWriterThreads:
    def test_sixteen_threads_each_appending_to_their_own_conversation_all_succeed(
        self, db: DatabaseManager[Sync]
    ) -> None:
        cids = [db.conversations.create(ConversationCreate(user_id="u")).id for _ in range(THREADS)]
        start = threading.Barrier(THREADS)

        def append_many(cid: uuid.UUID) -> list[int]:
            start.wait()
            return [db.messages.append(cid, _message(str(i))).seq for i in range(PER_THREAD)]

        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            seqs = list(pool.map(append_many, cids))

        assert seqs == [list(range(1, PER_THREAD + 1))] * THREADS
        for cid in cids:
            history = db.messages.last(cid, PER_THREAD)
            assert [m.seq for m in history] == list(range(1, PER_THREAD + 1))
            assert [m.content for m in history] == [str(i) for i in range(PER_THREAD)]
            assert db.conversations.get(cid).message_count == PER_THREAD
        assert db.messages.count() == THREADS * PER_THREAD


class TestAFailedWriteReleasesTheLock:
    def test_an_append_to_a_missing_conversation(self, db: DatabaseManager[Sync]) -> None:
        cid = db.conversations.create(ConversationCreate(user_id="u")).id
        with pytest.raises(NotFoundError):
            db.messages.append(uuid.uuid4(), _message())
        stored = _in_other_thread(lambda: db.messages.append(cid, _message()))
        assert stored.seq == 1

    def test_a_one_statement_write_that_conflicts(self, db: DatabaseManager[Sync]) -> None:
        db.personas.create(_persona("taken"))
        with pytest.raises(ConflictError):
            db.personas.create(_persona("taken"))
        created = _in_other_thread(lambda: db.personas.create(_persona("free")))
        assert created.name == "free"

    def test_a_conflict_inside_a_unit_of_work(self, db: DatabaseManager[Sync]) -> None:
        db.personas.create(_persona("taken"))
        cid = db.conversations.create(ConversationCreate(user_id="u")).id

        def fail(uow: Unit) -> None:
            uow.messages.append(cid, _message("rolled back"))
            uow.personas.create(_persona("taken"))

        with pytest.raises(ConflictError):
            db.run(fail)
        stored = _in_other_thread(lambda: db.messages.append(cid, _message("kept")))
        assert stored.seq == 1
        assert [m.content for m in db.messages.last(cid)] == ["kept"]

    def test_an_exception_of_the_caller_inside_a_unit_of_work(
        self, db: DatabaseManager[Sync]
    ) -> None:
        cid = db.conversations.create(ConversationCreate(user_id="u")).id

        def fail() -> None:
            with db.unit("write") as uow:
                uow.messages.append(cid, _message("rolled back"))
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            fail()
        stored = _in_other_thread(lambda: db.messages.append(cid, _message("kept")))
        assert stored.seq == 1

    def test_the_store_refuses_a_second_unit_inside_an_open_one(
        self, db: DatabaseManager[Sync]
    ) -> None:
        cid = db.conversations.create(ConversationCreate(user_id="u")).id

        def nest() -> None:
            with db.unit("write") as uow:
                uow.messages.append(cid, _message("rolled back"))
                db.messages.append(cid, _message("would wait for its own lock"))

        with pytest.raises(RuntimeError, match="already open"):
            nest()
        stored = _in_other_thread(lambda: db.messages.append(cid, _message("after")))
        assert stored.seq == 1

    def test_a_read_unit_refuses_a_write(self, db: DatabaseManager[Sync]) -> None:
        with pytest.raises(RuntimeError, match="read unit"), db.unit("read") as uow:
            uow.personas.create(_persona("never"))
        assert db.personas.find_by_name("never") is None
        created = _in_other_thread(lambda: db.personas.create(_persona("free")))
        assert created.name == "free"

    @pytest.mark.anyio
    async def test_an_async_unit_of_work_that_raises(self, adb: DatabaseManager[Async]) -> None:
        cid = (await adb.conversations.create(ConversationCreate(user_id="u"))).id

        def fail(uow: Unit) -> None:
            uow.messages.append(cid, _message("rolled back"))
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            await adb.run(fail)
        other = DatabaseManager(adb.service, Sync)  # the same service, called from a thread
        stored = _in_other_thread(lambda: other.messages.append(cid, _message("kept")))
        assert stored.seq == 1
        assert [m.content for m in await adb.messages.last(cid)] == ["kept"]

    @pytest.mark.anyio
    async def test_an_async_unit_of_work_whose_write_fails(
        self, adb: DatabaseManager[Async]
    ) -> None:
        await adb.personas.create(_persona("taken"))
        with pytest.raises(ConflictError):
            await adb.run(lambda uow: uow.personas.create(_persona("taken")))
        other = DatabaseManager(adb.service, Sync)
        created = _in_other_thread(lambda: other.personas.create(_persona("free")))
        assert created.name == "free"

    @pytest.mark.anyio
    async def test_the_async_store_has_no_unit_block(self, adb: DatabaseManager[Async]) -> None:
        with pytest.raises(TypeError, match=r"await db\.run"), adb.unit("write"):  # type: ignore[misc]
            pass


class TestWhatEachUnitIs:
    def test_each_unit_is_what_it_says(self, db: DatabaseManager[Sync], backend: str) -> None:
        if backend == "postgresql":
            _check_postgres_units(db)
        else:  # a SQLite file or the in-memory store: BEGIN unless single
            for intent, single in KINDS:
                with db.service.unit(intent, single=single) as conn:
                    conn.execute(text("SELECT 1"))
                    driver: sqlite3.Connection = conn.connection.driver_connection  # type: ignore[assignment]
                    assert driver.in_transaction is not single, (intent, single)

    def test_only_a_sqlite_file_has_a_writer_lock(
        self, db: DatabaseManager[Sync], backend: str
    ) -> None:
        lock = db.service.writer_lock
        assert (lock is not None) is (backend == "sqlite")


def _check_postgres_units(db: DatabaseManager[Sync]) -> None:
    expected = {"write": "read committed", "read": "repeatable read"}
    for intent, single in KINDS:
        with db.service.unit(intent, single=single) as conn:
            level = conn.exec_driver_sql("SHOW transaction_isolation").scalar()
            autocommit = conn.connection.driver_connection.autocommit  # type: ignore[union-attr]
            if single:  # one round trip per statement, no BEGIN
                assert autocommit is True, (intent, single)
            else:  # BEGIN … COMMIT at this level
                assert (autocommit, level) == (False, expected[intent]), intent


@pytest.fixture
def sqlite_service(tmp_path: Path) -> Iterator[DatabaseService]:
    service = DatabaseService(Settings(database_url=f"sqlite+pysqlite:///{tmp_path / 'w.db'}"))
    with service.unit("write") as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    yield service
    service.dispose()


def _lock(service: DatabaseService) -> threading.Lock:
    assert service.writer_lock is not None
    return service.writer_lock


class TestTheSqliteWriterLock:
    def test_it_is_held_by_write_units_and_released_after_each(
        self, sqlite_service: DatabaseService
    ) -> None:
        lock = _lock(sqlite_service)
        for intent, single in KINDS:
            with sqlite_service.unit(intent, single=single) as conn:
                conn.exec_driver_sql("SELECT count(*) FROM t")
                assert lock.locked() is (intent == "write"), (intent, single)
            assert not lock.locked(), (intent, single)

    @pytest.mark.parametrize(("intent", "single"), KINDS)
    def test_it_is_released_when_the_work_raises(
        self, sqlite_service: DatabaseService, intent: Intent, single: bool
    ) -> None:
        with pytest.raises(RuntimeError), sqlite_service.unit(intent, single=single):
            raise RuntimeError("boom")
        assert not _lock(sqlite_service).locked()
        with pytest.raises(StorageError), sqlite_service.unit(intent, single=single) as conn:
            conn.exec_driver_sql("SELECT * FROM no_such_table")
        assert not _lock(sqlite_service).locked()

    def test_a_unit_that_fails_to_commit_releases_it(self, sqlite_service: DatabaseService) -> None:

        def commit_on_a_closed_connection() -> None:
            with sqlite_service.unit("write") as conn:
                conn.exec_driver_sql("INSERT INTO t VALUES (1)")
                conn.connection.driver_connection.close()  # type: ignore[union-attr]

        with pytest.raises(StorageError):
            commit_on_a_closed_connection()
        assert not _lock(sqlite_service).locked()
        with sqlite_service.unit("read") as check:
            assert check.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0

    def test_a_transaction_is_begin_immediate(self, sqlite_service: DatabaseService) -> None:
        path = sqlite_service.url.database or ""
        with sqlite_service.unit("write"):
            # holding the RESERVED lock from the start: another connection cannot begin to write
            other = sqlite3.connect(path, timeout=0, isolation_level=None)
            try:
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    other.execute("BEGIN IMMEDIATE")
            finally:
                other.close()

    def test_each_write_statement_runs_under_it_and_no_read_does(self, tmp_path: Path) -> None:
        from agentkeep import connect_sync

        db = connect_sync(Settings(database_url=f"sqlite+pysqlite:///{tmp_path / 'a.db'}"))
        try:
            lock = _lock(db.service)
            seen: list[tuple[str, bool]] = []

            def record(statement: str) -> None:
                if "'main'." in statement:  # SQLite's own, inside a write (FTS5 reads its config)
                    return
                seen.append((statement.split(maxsplit=1)[0].upper(), lock.locked()))

            with watched(db.service, record):
                cid = db.conversations.create(ConversationCreate(user_id="u")).id
                db.messages.append(cid, _message())
                db.messages.last(cid)
                db.get_conversation_context(cid)
            writes = [locked for verb, locked in seen if verb in {"INSERT", "UPDATE", "DELETE"}]
            reads = [locked for verb, locked in seen if verb == "SELECT"]
            assert writes
            assert all(writes)
            assert reads
            assert not any(reads)
        finally:
            db.close()

    def test_waiting_longer_than_the_busy_timeout_is_a_storage_error(self, tmp_path: Path) -> None:
        settings = Settings(
            database_url=f"sqlite+pysqlite:///{tmp_path / 'b.db'}", sqlite_busy_timeout_ms=0
        )
        service = DatabaseService(settings)
        try:

            def write() -> None:
                with service.unit("write") as conn:
                    conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")

            with _lock(service):  # another writer of this process, still writing
                with pytest.raises(StorageError, match="database is locked"):
                    _in_other_thread(write)
                with service.unit("read") as conn:  # readers do not wait
                    assert conn.exec_driver_sql("SELECT 1").scalar() == 1
            assert not _lock(service).locked()
        finally:
            service.dispose()


def _driver(conn: Any) -> sqlite3.Connection:
    driver: sqlite3.Connection = conn.connection.driver_connection
    return driver


class TestTheSqliteWriterConnection:
    def test_write_units_share_one_connection_that_reads_do_not_use(
        self, sqlite_service: DatabaseService
    ) -> None:
        with sqlite_service.unit("write") as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
            writer = _driver(conn)
        with sqlite_service.unit("write") as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (2)")
            assert _driver(conn) is writer
        assert not writer.in_transaction  # committed, not left open between units
        with sqlite_service.unit("read") as conn:
            assert _driver(conn) is not writer
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 2

    @pytest.mark.parametrize("failure", ["raise", "sql", "commit"])
    def test_a_unit_that_fails_leaves_nothing_open(
        self, sqlite_service: DatabaseService, monkeypatch: pytest.MonkeyPatch, failure: str
    ) -> None:
        dialect = sqlite_service.engine.dialect
        real_commit = dialect.do_commit

        def fail_once(dbapi_connection: Any) -> None:
            monkeypatch.setattr(dialect, "do_commit", real_commit)
            raise sqlite3.OperationalError("disk I/O error")

        used: list[sqlite3.Connection] = []

        def write() -> None:
            with sqlite_service.unit("write") as conn:
                conn.exec_driver_sql("INSERT INTO t VALUES (1)")
                used.append(_driver(conn))
                if failure == "raise":
                    raise RuntimeError("boom")
                if failure == "sql":
                    conn.exec_driver_sql("INSERT INTO no_such_table VALUES (1)")
                monkeypatch.setattr(dialect, "do_commit", fail_once)

        with pytest.raises((RuntimeError, StorageError)):
            write()
        assert not used[0].in_transaction  # rolled back
        with sqlite_service.unit("write") as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (2)")
        with sqlite_service.unit("read") as conn:
            assert conn.exec_driver_sql("SELECT x FROM t").scalars().all() == [2]

    def test_disposing_of_the_service_closes_it(self, tmp_path: Path) -> None:
        service = DatabaseService(Settings(database_url=f"sqlite+pysqlite:///{tmp_path / 'c.db'}"))
        with service.unit("write") as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
            writer = _driver(conn)
        service.dispose()
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            writer.execute("SELECT 1")
        with service.unit("write") as conn:  # a disposed service opens a new one when used again
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        service.dispose()


class TestAUnitOfWorkInTheAsyncApi:
    @pytest.mark.anyio
    async def test_it_holds_no_lock_across_awaits_so_waiting_tasks_cannot_starve_it(
        self,
    ) -> None:
        """More waiting tasks than worker threads: the unit runs in one hop and commits; the
        waits are bounded."""
        import time

        import anyio

        from agentkeep import ConversationCreate, Settings, StorageError, connect

        adb = connect(Settings(database_url="memory", sqlite_busy_timeout_ms=300))
        conversation = await adb.conversations.create(ConversationCreate(user_id="u"))
        opened = threading.Event()
        failures: list[Exception] = []

        def slow_unit(uow: Unit) -> None:
            uow.messages.append(conversation.id, _message("inside"))
            opened.set()
            time.sleep(0.5)  # the waiters now occupy every other worker thread

        async def wait_for_the_store() -> None:
            try:
                await adb.conversations.get(conversation.id)
            except StorageError as exc:
                failures.append(exc)

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(adb.run, slow_unit)
                await anyio.to_thread.run_sync(opened.wait)
                for _ in range(60):  # anyio's default limit is 40 worker threads
                    tasks.start_soon(wait_for_the_store)
        assert failures
        assert "locked" in str(failures[0])
        assert [m.content for m in await adb.messages.last(conversation.id, 5)] == ["inside"]
        await adb.aclose()
