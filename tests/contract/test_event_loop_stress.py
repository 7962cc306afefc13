"""PostgreSQL's short operations on the event loop (``db.bridge``) under stress: many at once on
a small pool, competing with worker-thread hops for its connections, cancelled at random moments
and in every phase of a unit, failing, losing their server, and left pending when the event loop
ends. Whatever happens, nothing hangs, every connection goes back to the pool, no write is lost
or half-made, and the store goes on working.

Each scenario runs on an event loop of its own in a thread that the test waits for with a time
limit: a unit that blocked the loop (which no timeout on that loop could interrupt) fails the
test instead of hanging it."""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import threading
import time
import uuid
import weakref
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

import anyio
import greenlet
import psycopg
import pytest
from sqlalchemy import create_engine, text

from agentkeep import ConversationCreate, MessageCreate, Settings, connect
from agentkeep.db import bridge
from agentkeep.db.service import DatabaseService
from agentkeep.errors import AgentkeepError, NotFoundError, StorageError
from agentkeep.repositories import base
from agentkeep.repositories.base import Async
from agentkeep.repositories.facade import DatabaseManager

T = TypeVar("T")

LIMIT = 15.0
"""Seconds a scenario may take before it counts as hung."""


def _postgres_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("only PostgreSQL's operations run on the event loop")


def _small(settings: Settings) -> Settings:
    """A pool of two connections and no overflow: the loop and the worker threads compete."""
    return settings.model_copy(update={"pool_size": 2, "pool_max_overflow": 0})


def _within(main: Callable[[], Coroutine[Any, Any, T]], seconds: float = LIMIT) -> T:
    """``asyncio.run(main())`` in a thread of its own; fails if it has not ended in ``seconds``
    (a blocked event loop cannot time itself out)."""
    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append((True, asyncio.run(main())))
        except BaseException as exc:  # handed to the test
            outcome.append((False, exc))

    worker = threading.Thread(target=target, name="stress-loop", daemon=True)
    worker.start()
    worker.join(timeout=seconds)
    assert not worker.is_alive(), f"the scenario hung: still running after {seconds} s"
    ok, value = outcome[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


def _checked_out(adb: DatabaseManager[Async]) -> int:
    pool: Any = adb.service.engine.pool
    return int(pool.checkedout())


def _watched_sockets(loop: asyncio.AbstractEventLoop) -> int:
    """The sockets the loop watches besides its own wake-up pipe."""
    selector: Any = loop._selector  # type: ignore[attr-defined]
    return len(selector.get_map()) - 1


@pytest.fixture
def units(monkeypatch: pytest.MonkeyPatch) -> weakref.WeakSet[Any]:
    """Every greenlet ``bridge.run`` starts (while alive): the units run on the event loop."""
    started: weakref.WeakSet[Any] = weakref.WeakSet()

    class Recorded(bridge._Unit):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            started.add(self)

    monkeypatch.setattr(bridge, "_Unit", Recorded)
    return started


@pytest.fixture
def paths(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many operations ran on the event loop, fell back from it, or hopped."""
    seen: Counter[str] = Counter()
    real_run, real_hop = bridge.run, base.in_worker_thread

    async def on_loop(fn: Callable[[], Any]) -> Any:
        seen["loop"] += 1
        try:
            return await real_run(fn)
        except bridge.NoIdleConnectionError:
            seen["fallback"] += 1
            raise

    async def hopped(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        seen["hop"] += 1
        return await real_hop(fn, *args, **kwargs)

    monkeypatch.setattr(bridge, "run", on_loop)
    monkeypatch.setattr(base, "in_worker_thread", hopped)
    return seen


# 1. Many at once, cancelled at random moments ------------------------------------------------


class _Swarm:
    """Operations on three conversations: appends and bounded reads (on the loop while the pool
    has an idle connection), counts and multi-statement units (always a hop), a random share of
    them cancelled by ``task.cancel()``, a timeout, or their task group's scope cancelled from
    outside."""

    def __init__(self, adb: DatabaseManager[Async], rng: random.Random) -> None:
        self.adb = adb
        self.rng = rng
        self.cids: list[uuid.UUID] = []
        self.attempted: Counter[uuid.UUID] = Counter()
        self.returned: defaultdict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
        self.failures: list[BaseException] = []
        self.outcomes: Counter[str] = Counter()

    async def operation(self, i: int) -> None:
        adb, cid = self.adb, self.rng.choice(self.cids)
        kind = self.rng.choice(["append", "append", "append", "last", "get", "count", "unit"])
        if kind in ("append", "unit"):
            self.attempted[cid] += 1
        if kind == "append":
            stored = await adb.messages.append(cid, MessageCreate(role="user", content=f"m{i}"))
            self.returned[cid].append(stored.id)
        elif kind == "last":
            await adb.messages.last(cid, 5)
        elif kind == "get":
            await adb.conversations.get(cid)
        elif kind == "count":
            await adb.messages.count(cid)
        else:

            def work(uow: Any) -> uuid.UUID:
                stored = uow.messages.append(cid, MessageCreate(role="user", content=f"u{i}"))
                uow.messages.last(cid, 3)
                return stored.id  # type: ignore[no-any-return]

            self.returned[cid].append(await adb.run(work))

    async def guarded(self, i: int) -> None:
        try:
            await self.operation(i)
            self.outcomes["finished"] += 1
        except asyncio.CancelledError:
            self.outcomes["cancelled"] += 1
            raise
        except BaseException as exc:  # anything else is a failure of the store
            self.failures.append(exc)

    async def under_anyio_timeout(self, i: int) -> None:
        with anyio.move_on_after(self.rng.uniform(0, 0.01)):
            await self.guarded(i)

    async def under_asyncio_timeout(self, i: int) -> None:
        try:
            async with asyncio.timeout(self.rng.uniform(0, 0.01)):
                await self.guarded(i)
        except TimeoutError:
            pass

    async def group(self, first: int, size: int, delay: float) -> None:
        async with anyio.create_task_group() as tg:
            for i in range(first, first + size):
                tg.start_soon(self.guarded, i)
            await anyio.sleep(delay)
            tg.cancel_scope.cancel()

    async def run(self, tasks: int) -> list[BaseException | None]:
        """Start ``tasks`` operations, a few at a time, and wait for all of them."""
        loop, rng = asyncio.get_running_loop(), self.rng
        pending: list[asyncio.Task[None]] = []
        i = 0
        while i < tasks:
            mode = rng.random()
            if mode < 0.4:
                pending.append(loop.create_task(self.guarded(i)))
            elif mode < 0.6:
                task = loop.create_task(self.guarded(i))
                loop.call_later(rng.uniform(0, 0.02), task.cancel)
                pending.append(task)
            elif mode < 0.75:
                pending.append(loop.create_task(self.under_anyio_timeout(i)))
            elif mode < 0.85:
                pending.append(loop.create_task(self.under_asyncio_timeout(i)))
            else:
                size = rng.randint(2, 8)
                pending.append(loop.create_task(self.group(i, size, rng.uniform(0, 0.02))))
                i += size - 1
            i += 1
            if rng.random() < 0.3:
                await asyncio.sleep(0)  # some start while others are in flight
        with anyio.fail_after(LIMIT - 3):
            return await asyncio.gather(*pending, return_exceptions=True)


async def _swarm(adb: DatabaseManager[Async], rng: random.Random, tasks: int) -> dict[str, Any]:
    swarm = _Swarm(adb, rng)
    for _ in range(3):
        swarm.cids.append((await adb.conversations.create(ConversationCreate(user_id="u"))).id)
    results = await swarm.run(tasks)
    seen: dict[str, Any] = {
        "unexpected": [r for r in results if not isinstance(r, asyncio.CancelledError | None)],
        "failures": swarm.failures,
        "watched": _watched_sockets(asyncio.get_running_loop()),
        "checked_out": _checked_out(adb),
        "swarm": swarm,
    }
    seen["stored"] = {cid: await adb.messages.all(cid) for cid in swarm.cids}
    seen["counts"] = {cid: (await adb.conversations.get(cid)).message_count for cid in swarm.cids}
    after = MessageCreate(role="user", content="after")
    seen["again"] = {cid: (await adb.messages.append(cid, after)).seq for cid in swarm.cids}
    return seen


def test_many_operations_cancelled_at_random_moments_leave_every_write_whole(
    settings: Settings, backend: str, paths: Counter[str], units: weakref.WeakSet[Any]
) -> None:
    _postgres_only(backend)
    outcomes: Counter[str] = Counter()
    for round_ in range(3):
        rng = random.Random(round_)

        async def main(rng: random.Random = rng) -> dict[str, Any]:
            async with connect(_small(settings)) as adb:
                return await _swarm(adb, rng, tasks=150)

        seen = _within(main)
        swarm: _Swarm = seen["swarm"]
        outcomes.update(swarm.outcomes)
        assert seen["unexpected"] == []
        assert seen["failures"] == []
        assert seen["watched"] == 0  # no socket of a finished unit is still watched
        assert seen["checked_out"] == 0
        for cid in swarm.cids:
            messages = seen["stored"][cid]
            seqs = [m.seq for m in messages]
            assert seqs == list(range(1, len(seqs) + 1)), "seqs have a gap or a duplicate"
            # every append that returned is stored; a cancelled one may or may not have landed
            assert set(swarm.returned[cid]) <= {m.id for m in messages}
            assert len(swarm.returned[cid]) <= len(messages) <= swarm.attempted[cid]
            assert seen["counts"][cid] == len(messages)
            assert seen["again"][cid] == len(messages) + 1
    # the scenario did what it says: operations ran on the loop and in threads, and some of
    # them were cancelled while others finished
    assert paths["loop"] > 0
    assert paths["hop"] > 0
    assert outcomes["finished"] > 0
    assert outcomes["cancelled"] > 0
    gc.collect()
    assert [u for u in units if not u.dead] == []


def test_one_store_shared_by_event_loops_in_several_threads_keeps_every_write_whole(
    settings: Settings, backend: str, paths: Counter[str]
) -> None:
    """Each thread's loop runs its own units on the one pool, cancelled at random as above."""
    _postgres_only(backend)
    adb = connect(_small(settings))
    seen: list[dict[str, Any]] = []

    def one_loop(seed: int) -> None:
        async def main() -> dict[str, Any]:
            return await _swarm(adb, random.Random(seed), tasks=100)

        seen.append(_within(main))

    try:
        threads = [threading.Thread(target=one_loop, args=(seed,)) for seed in (10, 11, 12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=LIMIT + 1)
        assert not [t for t in threads if t.is_alive()]
        assert len(seen) == 3
        for one in seen:
            assert one["unexpected"] == []
            assert one["failures"] == []
            assert one["watched"] == 0
            for cid in one["swarm"].cids:
                seqs = [m.seq for m in one["stored"][cid]]
                assert seqs == list(range(1, len(seqs) + 1))
                assert one["again"][cid] == len(seqs) + 1
        assert _checked_out(adb) == 0
        assert paths["loop"] > 0
    finally:
        adb.service.dispose()


# 2. Cancelled in each phase of a unit ---------------------------------------------------------


@pytest.fixture
def slow_commit_table(settings: Settings, backend: str) -> Iterator[str]:
    """A table whose rows make their transaction's COMMIT take 0.3 s (a deferred trigger)."""
    _postgres_only(backend)
    name = f"slow_commit_{uuid.uuid4().hex[:8]}"
    engine = create_engine(settings.url, isolation_level="AUTOCOMMIT")  # type: ignore[arg-type]
    with engine.connect() as conn:
        conn.execute(text(f"CREATE TABLE {name} (x int)"))
        conn.execute(
            text(
                f"CREATE FUNCTION {name}_sleep() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN PERFORM pg_sleep(0.3); RETURN NULL; END $$"
            )
        )
        conn.execute(
            text(
                f"CREATE CONSTRAINT TRIGGER {name}_sleep AFTER INSERT ON {name} "
                f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {name}_sleep()"
            )
        )
    try:
        yield name
    finally:
        with engine.connect() as conn:
            conn.execute(text(f"DROP TABLE {name}"))
            conn.execute(text(f"DROP FUNCTION {name}_sleep()"))
        engine.dispose()


class _Phases:
    """Units of work on a table through the store's engine, run by ``bridge.run`` directly,
    that say which phase they are in."""

    def __init__(self, adb: DatabaseManager[Async], table: str) -> None:
        self.engine = adb.service.engine
        self.table = table
        self.phase: list[str] = []

    def insert(self, value: int, *, cancel_first: bool = False) -> int:
        if cancel_first:  # the caller is cancelled before the unit's first wait for the server
            task = asyncio.current_task()
            assert task is not None
            task.cancel()
        with self.engine.connect() as conn:
            self.phase.append("statement")
            conn.execute(text(f"INSERT INTO {self.table} VALUES (:v)"), {"v": value})
            self.phase.append("commit")
            conn.commit()
            self.phase.append("committed")
        return value

    def sleep_then_insert(self, value: int) -> int:
        with self.engine.connect() as conn:
            self.phase.append("query")
            conn.exec_driver_sql("SELECT pg_sleep(0.3)")
            conn.execute(text(f"INSERT INTO {self.table} VALUES (:v)"), {"v": value})
            conn.commit()
            self.phase.append("committed")
        return value

    async def rows(self) -> list[int]:
        def read() -> list[int]:
            with self.engine.connect() as conn:
                result = conn.execute(text(f"SELECT x FROM {self.table} ORDER BY x"))
                return [int(x) for x in result.scalars()]

        return await bridge.run(read)


async def _cancelled(task: asyncio.Future[Any]) -> float:
    """Seconds until ``task`` ends, which it must do cancelled."""
    started = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await task
    return time.monotonic() - started


def _phases_run(
    settings: Settings, table: str, scenario: Callable[[_Phases], Awaitable[T]]
) -> tuple[T, dict[str, Any]]:
    """``scenario`` on a small store whose pool has an idle connection; what it returned, and
    the state of the loop and pool after it."""

    async def main() -> tuple[T, dict[str, Any]]:
        async with connect(_small(settings)) as adb:
            await adb.conversations.list(user_id="u")  # an idle connection in the pool
            phases = _Phases(adb, table)
            result = await scenario(phases)
            after = {
                "rows": await phases.rows(),
                "watched": _watched_sockets(asyncio.get_running_loop()),
                "checked_out": _checked_out(adb),
            }
        return result, after

    return _within(main)


def test_a_unit_cancelled_before_it_starts_never_runs(
    settings: Settings, backend: str, slow_commit_table: str
) -> None:
    _postgres_only(backend)

    async def scenario(units: _Phases) -> list[str]:
        task = asyncio.ensure_future(bridge.run(lambda: units.insert(1)))
        task.cancel()
        await _cancelled(task)
        return units.phase

    phases, after = _phases_run(settings, slow_commit_table, scenario)
    assert phases == []
    assert after == {"rows": [], "watched": 0, "checked_out": 0}


def test_a_unit_cancelled_before_its_first_wait_finishes_then_gives_up(
    settings: Settings, backend: str, slow_commit_table: str
) -> None:
    _postgres_only(backend)

    async def scenario(units: _Phases) -> list[str]:
        await _cancelled(
            asyncio.ensure_future(bridge.run(lambda: units.insert(2, cancel_first=True)))
        )
        return units.phase

    phases, after = _phases_run(settings, slow_commit_table, scenario)
    assert phases == ["statement", "commit", "committed"]
    assert after == {"rows": [2], "watched": 0, "checked_out": 0}


@pytest.mark.parametrize("way", ["task.cancel", "cancel again and again", "asyncio", "anyio"])
def test_a_unit_cancelled_mid_query_finishes_first(
    settings: Settings, backend: str, slow_commit_table: str, way: str
) -> None:
    _postgres_only(backend)

    async def scenario(units: _Phases) -> tuple[list[str], float]:
        started = time.monotonic()
        if way == "asyncio":
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.05):
                    await bridge.run(lambda: units.sleep_then_insert(3))
        elif way == "anyio":  # cancels again at every turn of the loop until the unit ends
            with anyio.move_on_after(0.05) as scope:
                await bridge.run(lambda: units.sleep_then_insert(3))
            assert scope.cancelled_caught
        else:
            task = asyncio.ensure_future(bridge.run(lambda: units.sleep_then_insert(3)))
            await asyncio.sleep(0.05)
            assert units.phase == ["query"]
            task.cancel()
            if way == "cancel again and again":
                for k in range(1, 60):
                    asyncio.get_running_loop().call_later(k * 0.005, task.cancel)
            await _cancelled(task)
        return units.phase, time.monotonic() - started

    (phases, elapsed), after = _phases_run(settings, slow_commit_table, scenario)
    assert phases == ["query", "committed"]
    assert elapsed >= 0.3  # it waited for the query, not just for the cancellation
    assert after == {"rows": [3], "watched": 0, "checked_out": 0}


def test_a_unit_cancelled_during_its_commit_commits_first(
    settings: Settings, backend: str, slow_commit_table: str
) -> None:
    _postgres_only(backend)

    async def scenario(units: _Phases) -> tuple[list[str], float]:
        task = asyncio.ensure_future(bridge.run(lambda: units.insert(4)))
        while units.phase[-1:] != ["commit"]:
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.05)  # the COMMIT runs its 0.3 s trigger
        task.cancel()
        return list(units.phase), await _cancelled(task)

    (phases, elapsed), after = _phases_run(settings, slow_commit_table, scenario)
    assert phases == ["statement", "commit"]  # when it was cancelled
    assert elapsed >= 0.2  # the commit's end, not the cancellation, ended the wait
    assert after == {"rows": [4], "watched": 0, "checked_out": 0}


# 3. The server goes away mid-unit --------------------------------------------------------------


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For each new connection to the server: whether a unit on the event loop opened it (the
    loop blocked for the whole connect)."""
    opened: list[bool] = []
    real = psycopg.Connection.connect.__func__  # type: ignore[attr-defined]

    def connect(cls: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(isinstance(greenlet.getcurrent(), bridge._Unit))
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "connect", classmethod(connect))
    return opened


@pytest.fixture
def admin(settings: Settings, backend: str) -> Iterator[Any]:
    """A second engine on the test database, to end the store's connections from outside."""
    _postgres_only(backend)
    engine = create_engine(settings.url, isolation_level="AUTOCOMMIT")  # type: ignore[arg-type]
    yield engine
    engine.dispose()


def _terminate(admin: Any, pid: int) -> None:
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


def _backend_pids(adb: DatabaseManager[Async], n: int) -> list[int]:
    """The server's process ids of ``n`` connections, then idle in the pool."""
    conns = [adb.service.engine.connect() for _ in range(n)]
    pids = [int(c.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()) for c in conns]
    for conn in conns:
        conn.close()
    return pids


def test_a_connection_the_server_ends_mid_unit_fails_the_call_and_the_pool_recovers(
    admin: Any, settings: Settings, backend: str, paths: Counter[str], connects: list[bool]
) -> None:

    async def main() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        async with connect(_small(settings)) as adb:
            engine = adb.service.engine
            cid = (await adb.conversations.create(ConversationCreate(user_id="u"))).id
            pids: list[int] = []

            def long_query() -> None:
                with engine.connect() as conn:
                    pids.append(int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()))
                    conn.exec_driver_sql("SELECT pg_sleep(10)")

            task = asyncio.ensure_future(bridge.run(long_query))
            while not pids:
                await asyncio.sleep(0.001)
            await asyncio.sleep(0.05)  # waiting for the answer to pg_sleep
            started = time.monotonic()
            await asyncio.to_thread(_terminate, admin, pids[0])
            with pytest.raises(StorageError) as raised:
                await task
            seen["error"] = raised.value
            seen["error_after"] = time.monotonic() - started
            seen["checked_out_after_error"] = _checked_out(adb)
            seen["watched"] = _watched_sockets(asyncio.get_running_loop())
            # the store's own operations go on, on the loop and in threads
            appended = await adb.messages.append(cid, MessageCreate(role="user", content="a"))
            seen["seqs"] = [appended.seq, *[m.seq for m in await adb.messages.last(cid, 5)]]
            seen["count"] = await adb.messages.count(cid)
            seen["checked_out"] = _checked_out(adb)
        return seen

    seen = _within(main)
    assert "terminating connection" in str(seen["error"])
    assert seen["error_after"] < 5  # the end of the connection ended the wait
    assert seen["checked_out_after_error"] == 0
    assert seen["watched"] == 0
    assert seen["seqs"] == [1, 1]
    assert seen["count"] == 1
    assert seen["checked_out"] == 0
    # the connection that replaced the ended one was opened in a worker thread: a unit on the
    # loop neither connects nor waits for a connection
    assert True not in connects


@pytest.mark.parametrize("pinged", [True, False], ids=["pinged", "not-pinged"])
def test_idle_connections_the_server_ended_are_replaced_without_blocking_the_loop(
    admin: Any,
    settings: Settings,
    backend: str,
    paths: Counter[str],
    connects: list[bool],
    pinged: bool,
) -> None:
    """A pooled connection idle for longer than ``pool_pre_ping_idle`` is pinged when it is
    checked out, and one the server ended meanwhile is replaced; one not pinged fails its
    operation once. Either way, only worker threads wait for the new connections."""
    idle = 0.1 if pinged else 60.0

    async def main() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        store = _small(settings).model_copy(update={"pool_pre_ping_idle": idle})
        async with connect(store) as adb:
            cid = (await adb.conversations.create(ConversationCreate(user_id="u"))).id
            for pid in _backend_pids(adb, 2):
                await asyncio.to_thread(_terminate, admin, pid)
            await asyncio.sleep(0.2)  # idle long enough to be pinged, if pinged
            connects.clear()
            paths.clear()
            errors: list[StorageError] = []
            for n in range(6):
                try:
                    await adb.messages.append(cid, MessageCreate(role="user", content=f"{n}"))
                except StorageError as exc:  # the first use of a dead connection
                    errors.append(exc)
            seen["errors"] = len(errors)
            seen["seqs"] = [m.seq for m in await adb.messages.last(cid, 10)]
            seen["checked_out"] = _checked_out(adb)
        return seen

    seen = _within(main)
    if pinged:
        assert seen["errors"] == 0  # the ping found the dead ones
    else:
        assert seen["errors"] <= 2  # at most once per dead connection
    assert seen["seqs"] == list(range(1, 7 - seen["errors"]))
    assert seen["checked_out"] == 0
    assert paths["loop"] > 0
    assert True not in connects
    assert False in connects


def test_connections_past_pool_recycle_are_replaced_without_blocking_the_loop(
    settings: Settings, backend: str, paths: Counter[str], connects: list[bool]
) -> None:
    _postgres_only(backend)

    async def main() -> tuple[list[int], int]:
        async with connect(_small(settings).model_copy(update={"pool_recycle": 1})) as adb:
            cid = (await adb.conversations.create(ConversationCreate(user_id="u"))).id
            _backend_pids(adb, 2)  # both connections idle in the pool
            await asyncio.sleep(1.1)  # and now too old to be used
            connects.clear()
            paths.clear()
            hello = MessageCreate(role="user", content="hello")
            seqs = [(await adb.messages.append(cid, hello)).seq for _ in range(3)]
            return seqs, _checked_out(adb)

    seqs, checked_out = _within(main)
    assert seqs == [1, 2, 3]
    assert checked_out == 0
    assert paths["fallback"] >= 1  # the unit on the loop handed the replacing to a thread
    assert True not in connects
    assert False in connects


def test_a_caller_cancelled_while_a_dead_idle_connection_is_pinged_gets_the_cancellation(
    admin: Any, settings: Settings, backend: str, paths: Counter[str]
) -> None:
    """The unit on the loop pings its idle connection first, which finds it dead: the unit
    gives way to a worker thread, unless its caller was cancelled meanwhile, which then gets
    the cancellation (the operation does not run at all)."""

    async def main() -> tuple[bool, int]:
        store = _small(settings).model_copy(update={"pool_pre_ping_idle": 0.1})
        async with connect(store) as adb:
            cid = (await adb.conversations.create(ConversationCreate(user_id="u"))).id
            for pid in _backend_pids(adb, 2):
                await asyncio.to_thread(_terminate, admin, pid)
            await asyncio.sleep(0.2)  # idle long enough to be pinged
            paths.clear()
            hello = MessageCreate(role="user", content="hello")
            task = asyncio.ensure_future(adb.messages.append(cid, hello))
            await asyncio.sleep(0)  # it runs until it waits for the ping's answer
            task.cancel()
            try:
                await task
                cancelled = False
            except asyncio.CancelledError:
                cancelled = True
            return cancelled, await adb.messages.count(cid)

    cancelled, count = _within(main)
    assert paths["loop"] == 1
    assert cancelled
    assert count == 0
    assert paths["hop"] == 1  # the count, not the append


@pytest.mark.parametrize("path", ["event loop", "worker thread"])
def test_a_caller_cancelled_while_its_unit_runs_gets_the_cancellation_whatever_the_unit_raised(
    settings: Settings, backend: str, path: str
) -> None:
    _postgres_only(backend)

    async def main() -> tuple[str, str]:
        async with connect(_small(settings)) as adb:
            await adb.conversations.list(user_id="u")  # an idle connection in the pool
            engine = adb.service.engine

            def fails_slowly() -> None:
                with engine.connect() as conn:
                    conn.exec_driver_sql("SELECT pg_sleep(0.2)")
                raise NotFoundError("gone")

            def run() -> Awaitable[None]:
                if path == "event loop":
                    return bridge.run(fails_slowly)
                return base.in_worker_thread(fails_slowly)

            task = asyncio.ensure_future(run())
            await asyncio.sleep(0.05)
            task.cancel()
            try:
                await task
            except BaseException as exc:  # what the caller got
                by_task = type(exc).__name__
            with anyio.move_on_after(0.05) as scope:
                await run()
            by_scope = "moved on" if scope.cancelled_caught else "no"
        return by_task, by_scope

    assert _within(main) == ("CancelledError", "moved on")


def test_operations_waiting_in_worker_threads_get_connections_while_the_loop_is_busy(
    settings: Settings, backend: str, paths: Counter[str]
) -> None:
    """Units on the loop take idle connections without waiting; the worker threads that wait
    for one must still get their turn, however busy the loop keeps the pool."""
    _postgres_only(backend)

    async def main() -> dict[str, Any]:
        store = _small(settings).model_copy(update={"pool_timeout": 1.0})
        async with connect(store) as adb:
            cid = (await adb.conversations.create(ConversationCreate(user_id="u"))).id
            stop = time.monotonic() + 2
            hello = MessageCreate(role="user", content="hello")

            async def busy() -> int:
                n = 0
                while time.monotonic() < stop:
                    await adb.messages.append(cid, hello)
                    await adb.messages.last(cid, 5)
                    n += 1
                return n

            async def hopping() -> list[str]:
                outcomes = []
                while time.monotonic() < stop:
                    try:
                        await adb.messages.count(cid)
                        outcomes.append("ok")
                    except AgentkeepError as exc:
                        outcomes.append(type(exc).__name__ + ": " + str(exc))
                return outcomes

            results = await asyncio.gather(
                *(busy() for _ in range(8)), *(hopping() for _ in range(4))
            )
        return {"busy": results[:8], "hops": results[8:]}

    seen = _within(main)
    failed = [o for outcomes in seen["hops"] for o in outcomes if o != "ok"]
    assert failed == []  # none waited out its pool_timeout
    assert min(len(outcomes) for outcomes in seen["hops"]) >= 10
    assert min(seen["busy"]) >= 10


# 4. Errors raised inside units on the loop, many at once --------------------------------------


async def _failing(adb: DatabaseManager[Async], cid: Any, gone: Any, round_: int, i: int) -> str:
    """One of five operations, four of which fail: what it raised, or ``"stored"``."""
    kind = i % 5
    try:
        if kind == 0:
            await adb.messages.append(gone, MessageCreate(role="user", content="x"))
        elif kind == 1:
            await adb.conversations.get(gone)
        elif kind == 2:  # one client_id, another content each time: one of them lands
            same = MessageCreate(role="user", content=f"c{round_}.{i}", client_id="same")
            await adb.messages.append(cid, same)
        elif kind == 3:
            await adb.messages.last("not-an-id", 5)
        else:
            await adb.messages.append(cid, MessageCreate(role="user", content="ok"))
    except AgentkeepError as exc:
        return f"{kind}:{type(exc).__name__}"
    return f"{kind}:stored"


def test_many_failing_operations_at_once_give_every_connection_back(
    settings: Settings, backend: str, paths: Counter[str], units: weakref.WeakSet[Any]
) -> None:
    _postgres_only(backend)

    async def main() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        async with connect(_small(settings)) as adb:
            cid = (await adb.conversations.create(ConversationCreate(user_id="u"))).id
            gone = (await adb.conversations.create(ConversationCreate(user_id="v"))).id
            await adb.conversations.delete(gone)
            outcomes: Counter[str] = Counter()
            for round_ in range(3):
                ops = (_failing(adb, cid, gone, round_, i) for i in range(100))
                outcomes.update(await asyncio.gather(*ops))
            seen["outcomes"] = outcomes
            seen["watched"] = _watched_sockets(asyncio.get_running_loop())
            seen["checked_out"] = _checked_out(adb)
            stored = await adb.messages.all(cid)
            seen["seqs"] = [m.seq for m in stored]
            seen["same"] = [m.content for m in stored if m.client_id == "same"]
        return seen

    seen = _within(main)
    assert seen["checked_out"] == 0
    assert seen["watched"] == 0
    # of 60 appends with one client_id and different contents, one is stored; 59 are refused
    assert seen["outcomes"] == {
        "0:NotFoundError": 60,
        "1:NotFoundError": 60,
        "2:stored": 1,
        "2:IdempotencyConflictError": 59,
        "3:ValidationError": 60,
        "4:stored": 60,
    }
    assert len(seen["same"]) == 1
    assert seen["seqs"] == list(range(1, 62))
    assert paths["loop"] > 0
    gc.collect()
    assert [u for u in units if not u.dead] == []


# 5. The event loop ends with units pending ---------------------------------------------------


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_the_event_loop_ending_with_units_pending_waits_for_them_and_returns_the_connections(
    settings: Settings, backend: str, units: weakref.WeakSet[Any]
) -> None:
    _postgres_only(backend)
    records = _Records()
    logging.getLogger("asyncio").addHandler(records)
    adb = connect(_small(settings))
    finished: list[int] = []
    cids: list[uuid.UUID] = []
    pending: list[asyncio.Task[Any]] = []  # left running when main returns

    def slow(n: int) -> int:
        with adb.service.engine.connect() as conn:
            conn.exec_driver_sql("SELECT pg_sleep(0.3)")
        finished.append(n)
        return n

    async def main() -> float:
        cid = (await adb.conversations.create(ConversationCreate(user_id="u"))).id
        cids.append(cid)
        for conn in [adb.service.engine.connect() for _ in range(2)]:
            conn.close()  # both connections idle in the pool
        loop = asyncio.get_running_loop()
        # left running when main returns: asyncio.run cancels them, then waits for them
        pending.append(loop.create_task(bridge.run(lambda: slow(0))))
        for n in range(4):
            appended = adb.messages.append(cid, MessageCreate(role="user", content=f"{n}"))
            pending.append(loop.create_task(appended))
        await asyncio.sleep(0.05)
        return time.monotonic()

    try:
        returned = _within(main)
        ended = time.monotonic()
        gc.collect()
        assert finished == [0]  # the pending unit ran to its end
        assert ended - returned < 5
        assert _checked_out(adb) == 0
        with adb.service.engine.connect() as conn:
            seqs = conn.execute(
                text("SELECT seq FROM messages WHERE conversation_id = :c ORDER BY seq"),
                {"c": cids[0]},
            ).scalars()
            stored = list(seqs)
        assert stored == list(range(1, len(stored) + 1))  # the appends landed whole, or not
        assert not [m for m in records.messages if "destroyed but it is pending" in m]
        assert [u for u in units if not u.dead] == []
    finally:
        logging.getLogger("asyncio").removeHandler(records)
        adb.service.dispose()


def _sleeping_unit(settings: Settings, backend: str) -> tuple[DatabaseService, dict[str, Any]]:
    """A store with one idle connection, and (``held["unit"]``) a unit that waits 0.3 s on the
    server; while it runs, ``held["fairy"]`` is its pooled connection."""
    _postgres_only(backend)
    service = connect(_small(settings)).service
    service.engine.connect().close()
    held: dict[str, Any] = {}

    def slow() -> None:
        with service.engine.connect() as conn:
            held["fairy"] = conn.connection
            conn.exec_driver_sql("SELECT pg_sleep(0.3)")

    held["unit"] = slow
    return service, held


def _left_waiting(unit: Callable[[], None]) -> tuple[asyncio.AbstractEventLoop, asyncio.Task[None]]:
    """A new event loop, run until ``unit`` (run on it) waits for the server, then left so."""
    loop = asyncio.new_event_loop()
    task = loop.create_task(bridge.run(unit))
    loop.run_until_complete(asyncio.sleep(0.05))
    return loop, task


@pytest.mark.xfail(
    strict=False,
    reason="hung once in the whole suite before the pool closed, instead of rolling back, a "
    "connection handed back mid-statement (the test below): not strict until the whole suite "
    "has run it green again",
)
def test_a_loop_closed_under_a_pending_unit_gives_its_connection_back(
    settings: Settings, backend: str, units: weakref.WeakSet[Any]
) -> None:
    """A loop stopped and closed without cancelling its tasks (not what ``asyncio.run`` does):
    the unit left waiting is ended when its task is discarded, and its connection does not
    stay checked out of the pool."""
    service, held = _sleeping_unit(settings, backend)
    slow = held["unit"]

    def scenario() -> None:
        loop, task = _left_waiting(slow)
        try:
            assert not task.done()
        finally:
            loop.close()
        del task, loop
        gc.collect()

    worker = threading.Thread(target=scenario, daemon=True)
    try:
        worker.start()
        worker.join(timeout=LIMIT)
        assert not worker.is_alive(), "closing the loop hung"
        gc.collect()
        assert service.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        assert [u for u in units if not u.dead] == []
    finally:
        service.dispose()


@pytest.mark.xfail(
    strict=True,
    reason="a greenlet cannot be unwound from another thread than its own: a unit abandoned "
    "with its loop and collected elsewhere keeps its connection checked out",
)
def test_a_unit_abandoned_with_its_loop_and_collected_in_another_thread_gives_its_connection_back(
    settings: Settings, backend: str
) -> None:
    service, held = _sleeping_unit(settings, backend)
    slow = held["unit"]

    def scenario() -> None:
        loop, _ = _left_waiting(slow)  # abandoned with the loop
        loop.close()

    gc.disable()  # what the loop's thread left is collected here, in the test's thread
    try:
        worker = threading.Thread(target=scenario, daemon=True)
        worker.start()
        worker.join(timeout=LIMIT)
        assert not worker.is_alive()
        gc.collect()
        assert service.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        gc.enable()
        service.dispose()


def test_a_connection_handed_back_by_an_abandoned_unit_mid_statement_is_closed_not_waited_on(
    settings: Settings, backend: str
) -> None:
    """The collector may hand an abandoned unit's connection back to the pool before it ends
    the unit's greenlet, which still holds the connection's lock mid-statement: rolling it back
    would wait for that lock forever (in the collecting thread). The pool closes it instead,
    and connects anew next time."""
    service, held = _sleeping_unit(settings, backend)
    slow = held["unit"]

    def scenario() -> None:
        _loop, _task = _left_waiting(slow)  # abandoned with the loop, kept open
        fairy = held["fairy"]
        assert fairy.dbapi_connection.lock.locked()  # the unit waits mid-statement
        fairy.close()  # handed back as the collector would, the unit still suspended
        held["closed"] = True

    worker = threading.Thread(target=scenario, daemon=True)
    try:
        worker.start()
        worker.join(timeout=LIMIT)
        assert not worker.is_alive(), "handing the connection back waited for its lock"
        assert held.get("closed") is True
        assert service.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        with service.engine.connect() as conn:  # a new connection in its place
            assert conn.exec_driver_sql("SELECT 1").scalar_one() == 1
    finally:
        service.dispose()
