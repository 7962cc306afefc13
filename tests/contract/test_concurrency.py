"""Concurrent writers on one conversation: every append gets its own sequence number, none is lost,
and retries of one client id store one message, on every backend."""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import anyio
import pytest

from agentkeep import (
    Async,
    ConversationCreate,
    DatabaseManager,
    Message,
    MessageCreate,
    Sync,
)

T = TypeVar("T")

THREADS = 4
PER_THREAD = 50
TASKS = 8
PER_TASK = 25


def _together(workers: int, work: Callable[[int], T]) -> list[T]:
    """Run ``work(0..workers-1)`` in threads released at the same moment; results in order."""
    start = threading.Barrier(workers)

    def run(worker: int) -> T:
        start.wait()
        return work(worker)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, range(workers)))


def _assert_dense_history(db: DatabaseManager[Sync], cid: uuid.UUID, total: int) -> list[Message]:
    history = db.messages.last(cid, total)
    assert [m.seq for m in history] == list(range(1, total + 1))
    assert db.messages.count(cid) == total
    assert db.conversations.get(cid).message_count == total
    return history


class TestConcurrentAppends:
    def test_threads_appending_to_one_conversation_get_every_sequence_number_once(
        self, db: DatabaseManager[Sync]
    ) -> None:
        cid = db.conversations.create(ConversationCreate(user_id="u1")).id

        def append_many(worker: int) -> list[int]:
            return [
                db.messages.append(cid, MessageCreate(role="user", content=f"{worker}:{i}")).seq
                for i in range(PER_THREAD)
            ]

        seqs = _together(THREADS, append_many)
        total = THREADS * PER_THREAD
        assert sorted(s for mine in seqs for s in mine) == list(range(1, total + 1))
        for mine in seqs:  # each writer's messages are stored in the order it sent them
            assert mine == sorted(mine)
        history = _assert_dense_history(db, cid, total)
        for worker, mine in enumerate(seqs):
            assert [history[s - 1].content for s in mine] == [
                f"{worker}:{i}" for i in range(PER_THREAD)
            ]

    @pytest.mark.anyio
    async def test_async_tasks_appending_to_one_conversation_get_every_sequence_number_once(
        self, adb: DatabaseManager[Async]
    ) -> None:
        cid = (await adb.conversations.create(ConversationCreate(user_id="u1"))).id
        seqs: list[int] = []

        async def append_many(worker: int) -> None:
            for i in range(PER_TASK):
                stored = await adb.messages.append(
                    cid, MessageCreate(role="user", content=f"{worker}:{i}")
                )
                seqs.append(stored.seq)

        async with anyio.create_task_group() as tasks:
            for worker in range(TASKS):
                tasks.start_soon(append_many, worker)

        total = TASKS * PER_TASK
        assert sorted(seqs) == list(range(1, total + 1))
        history = await adb.messages.last(cid, total)
        assert [m.seq for m in history] == list(range(1, total + 1))
        assert (await adb.conversations.get(cid)).message_count == total

    def test_appends_to_different_conversations_do_not_share_numbers(
        self, db: DatabaseManager[Sync]
    ) -> None:
        cids = [db.conversations.create(ConversationCreate(user_id="u1")).id for _ in range(4)]

        def append_round_robin(worker: int) -> None:
            for i in range(20):
                db.messages.append(
                    cids[(worker + i) % len(cids)], MessageCreate(role="user", content="x")
                )

        _together(THREADS, append_round_robin)
        for cid in cids:
            _assert_dense_history(db, cid, THREADS * 20 // len(cids))


class TestConcurrentRetries:
    def test_concurrent_retries_of_one_client_id_store_one_message(
        self, db: DatabaseManager[Sync]
    ) -> None:
        cid = db.conversations.create(ConversationCreate(user_id="u1")).id
        sent = MessageCreate(role="assistant", content="only once", client_id="turn-1")

        stored = _together(6, lambda _: db.messages.append(cid, sent))

        assert len({m.id for m in stored}) == 1
        assert {m.seq for m in stored} == {1}
        history = _assert_dense_history(db, cid, 1)
        assert history[0].content == "only once"

    def test_racing_retries_of_many_client_ids_leave_no_gaps(
        self, db: DatabaseManager[Sync]
    ) -> None:
        cid = db.conversations.create(ConversationCreate(user_id="u1")).id
        client_ids = [f"turn-{i}" for i in range(25)]

        def send_all(worker: int) -> dict[str, uuid.UUID]:
            order = client_ids[:]
            random.Random(worker).shuffle(order)
            return {
                client_id: db.messages.append(
                    cid, MessageCreate(role="user", content=client_id, client_id=client_id)
                ).id
                for client_id in order
            }

        results = _together(THREADS, send_all)

        assert all(result == results[0] for result in results)  # every retry got the same message
        history = _assert_dense_history(db, cid, len(client_ids))
        assert sorted(m.client_id or "" for m in history) == sorted(client_ids)
        assert all(m.content == m.client_id for m in history)
