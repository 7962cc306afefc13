"""Where the async API runs an operation: a bounded read of a SQLite file on the caller's thread;
on PostgreSQL a bounded read or a one-statement write on the event loop, its waits for the server
awaited; everything else in one worker-thread hop. Many at once, cancelled or failing, they end as
the sync store's do."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

from agentkeep import ConversationCreate, MessageCreate, connect
from agentkeep.errors import NotFoundError
from agentkeep.repositories import base
from agentkeep.repositories.base import Async
from agentkeep.repositories.facade import DatabaseManager


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the functions handed to a worker thread."""
    seen: list[str] = []
    real = base.in_worker_thread

    async def counting(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        seen.append(getattr(fn, "__name__", "?"))
        return await real(fn, *args, **kwargs)

    monkeypatch.setattr(base, "in_worker_thread", counting)
    return seen


@pytest.mark.anyio
async def test_bounded_reads_skip_the_hop_on_a_sqlite_file_and_on_postgresql(
    adb: DatabaseManager[Async], backend: str, hops: list[str]
) -> None:
    conversation = await adb.conversations.create(ConversationCreate(user_id="u1"))
    message = await adb.messages.append(conversation.id, MessageCreate(role="user", content="hi"))
    # the creation is a transaction of several statements; the append is one on PostgreSQL
    assert len(hops) == (1 if backend == "postgresql" else 2)

    hops.clear()
    assert [m.id for m in await adb.messages.last(conversation.id, 10)] == [message.id]
    assert (await adb.messages.get(message.id)).content == "hi"
    assert (await adb.conversations.get(conversation.id)).message_count == 1
    listed = await adb.conversations.list(user_id="u1")
    assert [c.id for c in listed.items] == [conversation.id]
    page = await adb.messages.list(conversation.id, limit=5)
    assert [m.id for m in page.items] == [message.id]
    assert len(hops) == (5 if backend == "memory" else 0)

    hops.clear()
    assert await adb.messages.count(conversation.id) == 1  # may scan: hops everywhere
    assert len(hops) == 1


@pytest.mark.anyio
async def test_a_bounded_read_on_the_event_loop_sees_a_write_committed_in_a_worker(
    adb: DatabaseManager[Async],
) -> None:
    conversation = await adb.conversations.create(ConversationCreate(user_id="u1"))
    loop_thread = threading.get_ident()
    for i in range(20):
        await adb.messages.append(conversation.id, MessageCreate(role="user", content=f"m{i}"))
        last = await adb.messages.last(conversation.id, 1)
        assert last[0].content == f"m{i}"
    assert threading.get_ident() == loop_thread


@pytest.mark.anyio
async def test_a_bounded_read_keeps_its_errors(adb: DatabaseManager[Async]) -> None:
    from agentkeep.errors import NotFoundError, ValidationError

    with pytest.raises(NotFoundError):
        await adb.conversations.get("0190a000-0000-7000-8000-000000000000")
    with pytest.raises(ValidationError):
        await adb.messages.last("not-an-id", 10)


HELLO = MessageCreate(role="user", content="hello")


@pytest.mark.anyio
async def test_short_operations_on_postgresql_run_on_the_event_loop(
    adb: DatabaseManager[Async], backend: str, hops: list[str]
) -> None:
    conversation = await adb.conversations.create(ConversationCreate(user_id="u"))
    hops.clear()

    appended = await adb.messages.append(conversation.id, HELLO)
    last = await adb.messages.last(conversation.id, 50)
    listed = await adb.conversations.list(user_id="u")
    got = await adb.conversations.get(conversation.id)

    assert [m.id for m in last] == [appended.id]
    assert [c.id for c in listed.items] == [conversation.id]
    assert got.id == conversation.id
    if backend == "postgresql":
        assert hops == []  # no worker thread for any of them
    elif backend == "sqlite":
        assert hops == ["call"]  # a write to a file hops (its reads run on the loop)


@pytest.mark.anyio
async def test_many_at_once_all_land_in_order(adb: DatabaseManager[Async]) -> None:
    conversation = await adb.conversations.create(ConversationCreate(user_id="u"))
    cid = conversation.id

    async def append(i: int) -> int:
        stored = await adb.messages.append(cid, MessageCreate(role="user", content=f"m{i}"))
        await adb.messages.last(cid, 5)
        return stored.seq

    # more than the pool holds (4 + overflow in the test settings): the rest wait their turn
    seqs = await asyncio.gather(*(append(i) for i in range(60)))

    assert sorted(seqs) == list(range(1, 61))
    assert await adb.messages.count(cid) == 60


@pytest.mark.anyio
async def test_a_cancelled_caller_leaves_the_operation_finished(
    adb: DatabaseManager[Async],
) -> None:
    conversation = await adb.conversations.create(ConversationCreate(user_id="u"))
    task = asyncio.ensure_future(adb.messages.append(conversation.id, HELLO))
    await asyncio.sleep(0)  # started: on PostgreSQL it now waits for the server's answer
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task

    # whether it had started or not, nothing is half-written and the store goes on
    count = await adb.messages.count(conversation.id)
    assert count in (0, 1)
    again = await adb.messages.append(conversation.id, HELLO)
    assert again.seq == count + 1


@pytest.mark.anyio
async def test_a_failing_operation_raises_its_error_and_gives_its_connection_back(
    adb: DatabaseManager[Async], backend: str
) -> None:
    conversation = await adb.conversations.create(ConversationCreate(user_id="u"))
    missing = (await adb.conversations.create(ConversationCreate(user_id="v"))).id
    await adb.conversations.delete(missing)

    for _ in range(30):  # more than the pool holds: a connection kept would run it dry
        with pytest.raises(NotFoundError):
            await adb.messages.append(missing, HELLO)
        with pytest.raises(NotFoundError):
            await adb.conversations.get(missing)

    assert (await adb.messages.append(conversation.id, HELLO)).seq == 1
    if backend == "postgresql":
        pool: Any = adb.service.engine.pool
        assert pool.checkedout() == 0


@pytest.mark.anyio
async def test_a_pool_with_no_idle_connection_sends_the_operation_to_a_worker_thread(
    adb: DatabaseManager[Async], backend: str, hops: list[str]
) -> None:
    if backend != "postgresql":
        pytest.skip("only PostgreSQL's operations run on the event loop")
    conversation = await adb.conversations.create(ConversationCreate(user_id="u"))
    hops.clear()
    service = adb.service
    pool: Any = service.engine.pool
    held = [service.engine.connect() for _ in range(pool.checkedin())]  # every idle one
    try:
        assert not service.loop_units
        # connecting (or waiting for a connection) would block the event loop: it hops
        assert await adb.messages.last(conversation.id, 5) == []
        assert hops == ["call"]
    finally:
        for conn in held:
            conn.close()
    hops.clear()
    assert service.loop_units
    assert await adb.messages.last(conversation.id, 5) == []
    assert hops == []


def test_a_unit_on_the_event_loop_finishes_under_a_cancel_scope_that_keeps_cancelling(
    settings: Any, backend: str
) -> None:
    """anyio's cancel scopes cancel the task again at every turn of the loop until it leaves
    them; a unit waiting on the server must still see its answer, finish, and then give up."""
    if backend != "postgresql":
        pytest.skip("only PostgreSQL's operations run on the event loop")
    import anyio

    from agentkeep.db import bridge
    from agentkeep.db.service import DatabaseService

    service = DatabaseService(settings)
    service.engine.connect().close()  # an idle connection for the unit to take
    outcome: list[object] = []

    def slow() -> float:
        with service.engine.connect() as conn:
            return float(conn.exec_driver_sql("select 1 from pg_sleep(0.3)").scalar_one())

    async def cancelled_while_waiting() -> None:
        with anyio.move_on_after(0.05) as scope:
            outcome.append(await bridge.run(slow))
        outcome.append(scope.cancelled_caught)

    worker = threading.Thread(target=anyio.run, args=(cancelled_while_waiting,), daemon=True)
    try:
        worker.start()
        worker.join(timeout=15)
        assert not worker.is_alive(), "the unit never finished: the loop kept cancelling it"
        assert outcome == [True]  # finished, then the cancellation was raised and caught
        assert service.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        service.dispose()


@pytest.mark.anyio
async def test_an_idle_connection_taken_by_another_thread_first_sends_the_operation_to_a_worker(
    adb: DatabaseManager[Async], backend: str, hops: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the look at the pool and the checkout, a worker thread may take the last idle
    connection: the unit on the event loop neither waits for one (the loop blocked) nor
    connects, it takes the hop."""
    if backend != "postgresql":
        pytest.skip("only PostgreSQL's operations run on the event loop")
    conversation = await adb.conversations.create(ConversationCreate(user_id="u"))
    service = adb.service
    pool: Any = service.engine.pool
    monkeypatch.setattr(type(service), "loop_units", property(lambda _: True))  # looked: idle
    held = [service.engine.connect() for _ in range(pool.checkedin())]  # then taken
    hops.clear()
    try:
        assert await adb.messages.append(conversation.id, HELLO) is not None
        assert hops == ["call"]
        assert await adb.messages.count(conversation.id) == 1  # it ran once, in the worker
    finally:
        for conn in held:
            conn.close()
    assert pool.checkedout() == 0


@pytest.mark.anyio
async def test_a_store_told_to_keep_off_the_event_loop_hops_for_every_operation(
    settings: Any, backend: str, hops: list[str]
) -> None:
    if backend != "postgresql":
        pytest.skip("only PostgreSQL's operations run on the event loop")
    async with connect(settings.model_copy(update={"pg_event_loop": False})) as adb:
        conversation = await adb.conversations.create(ConversationCreate(user_id="u"))
        hops.clear()
        await adb.messages.append(conversation.id, HELLO)
        assert await adb.messages.last(conversation.id, 5) != []
        assert hops == ["call", "call"]
        assert not adb.service.loop_units
