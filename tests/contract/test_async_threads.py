"""Where the async API runs an operation: a bounded read of a SQLite file on the caller's thread,
everything else in one worker-thread hop."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from agentkeep import ConversationCreate, MessageCreate
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
async def test_bounded_reads_skip_the_hop_only_on_a_sqlite_file(
    adb: DatabaseManager[Async], backend: str, hops: list[str]
) -> None:
    conversation = await adb.conversations.create(ConversationCreate(user_id="u1"))
    message = await adb.messages.append(conversation.id, MessageCreate(role="user", content="hi"))
    assert len(hops) == 2  # writes always hop

    hops.clear()
    assert [m.id for m in await adb.messages.last(conversation.id, 10)] == [message.id]
    assert (await adb.messages.get(message.id)).content == "hi"
    assert (await adb.conversations.get(conversation.id)).message_count == 1
    listed = await adb.conversations.list(user_id="u1")
    assert [c.id for c in listed.items] == [conversation.id]
    page = await adb.messages.list(conversation.id, limit=5)
    assert [m.id for m in page.items] == [message.id]
    in_process = backend == "sqlite"
    assert len(hops) == (0 if in_process else 5)

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
