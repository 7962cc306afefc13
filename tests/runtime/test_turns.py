"""The turn state machine on every backend: events in order, and a reply never left streaming.

Driven through :class:`ChatRuntime` with the echo model; the store's steps are made to fail by
wrapping :class:`TurnStore`'s methods (the store itself is real).
"""

from __future__ import annotations

import uuid
from contextlib import aclosing
from typing import Any

import anyio
import pytest

from agentkeep import AgentCreate, Async, DatabaseManager, StorageError
from agentkeep.managers.agents import AgentManager
from agentkeep.managers.chat import ChatEvent, ChatRuntime, NewConversation, Turn
from agentkeep.managers.turn_store import TurnStore
from agentkeep.models.conversation import Message

pytestmark = pytest.mark.anyio


@pytest.fixture
def runtime(adb: DatabaseManager[Async]) -> ChatRuntime:
    return ChatRuntime(adb, AgentManager(adb, adb.settings), adb.settings)


async def new_turn(runtime: ChatRuntime, adb: DatabaseManager[Async], **settings: Any) -> Turn:
    agent = await adb.agents.create(
        AgentCreate(name=f"a-{uuid.uuid4().hex[:6]}", provider="echo", model_settings=settings)
    )
    return await runtime.start(NewConversation(agent_id=agent.id, content="one two three four"))


async def run(turn: Turn) -> list[ChatEvent]:
    async with aclosing(turn.events()) as events:
        return [event async for event in events]


async def reply_of(adb: DatabaseManager[Async], events: list[ChatEvent]) -> Message:
    return await adb.messages.get(events[0].data["message_id"])


class TestTurnEnds:
    async def test_events_come_in_order_and_the_reply_is_complete(
        self, runtime: ChatRuntime, adb: DatabaseManager[Async]
    ) -> None:
        events = await run(await new_turn(runtime, adb))
        assert events[0].event == "message_start"
        assert {e.event for e in events[1:-1]} == {"token"}
        assert events[-1].event == "message_end"
        reply = await reply_of(adb, events)
        assert reply.status == "complete"
        assert reply.metadata["in_reply_to"] == events[0].data["user_message_id"]
        assert runtime.inflight == set()

    async def test_closing_right_after_message_start_stores_it_cancelled(
        self, runtime: ChatRuntime, adb: DatabaseManager[Async]
    ) -> None:
        events = (await new_turn(runtime, adb)).events()
        started = await anext(events)
        await events.aclose()  # GeneratorExit at the message_start yield
        reply = await adb.messages.get(started.data["message_id"])
        assert (reply.status, reply.content) == ("cancelled", "")
        assert runtime.inflight == set()

    async def test_a_cancelled_task_stores_the_partial_reply_cancelled(
        self, runtime: ChatRuntime, adb: DatabaseManager[Async]
    ) -> None:
        turn = await new_turn(runtime, adb, token_delay_ms=100)
        seen: list[ChatEvent] = []
        with anyio.move_on_after(0.25):
            async with aclosing(turn.events()) as events:
                async for event in events:
                    seen.append(event)
        reply = await reply_of(adb, seen)
        assert reply.status == "cancelled"
        assert reply.content == "".join(e.data["text"] for e in seen if e.event == "token")

    async def test_a_store_failure_while_finalising_is_retried_once(
        self, runtime: ChatRuntime, adb: DatabaseManager[Async], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        calls = fail_finishing(monkeypatch, times=1)
        events = await run(await new_turn(runtime, adb))
        assert events[-1].event == "message_end"
        assert (await reply_of(adb, events)).status == "complete"
        assert calls == [1, 2]

    async def test_a_reply_that_cannot_be_finalised_is_at_least_marked_error(
        self, runtime: ChatRuntime, adb: DatabaseManager[Async], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        fail_finishing(monkeypatch, times=2)
        events = await run(await new_turn(runtime, adb))
        assert events[-1].event == "error"
        assert events[-1].data["message_id"] == events[0].data["message_id"]
        reply = await reply_of(adb, events)
        assert reply.status == "error"
        assert reply.metadata["error"] == "the reply could not be stored"

    async def test_a_store_that_is_gone_still_ends_the_stream_with_an_error(
        self, runtime: ChatRuntime, adb: DatabaseManager[Async], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        fail_finishing(monkeypatch, times=2)

        async def gone(self: TurnStore, reply: Message, error: str) -> Message:
            raise StorageError("database error: the server closed the connection")

        monkeypatch.setattr(TurnStore, "mark_error", gone)
        events = await run(await new_turn(runtime, adb))
        assert [events[0].event, events[-1].event] == ["message_start", "error"]
        assert events[-1].data["code"] == "storage_error"
        assert runtime.inflight == set()  # no longer touched: the sweep will mark it

    async def test_a_failing_model_stores_the_error_and_its_reason(
        self, runtime: ChatRuntime, adb: DatabaseManager[Async]
    ) -> None:
        events = await run(await new_turn(runtime, adb, fail="down", fail_after_tokens=1))
        assert events[-1].event == "error"
        reply = await reply_of(adb, events)
        assert reply.status == "error"
        assert reply.metadata["error_code"] == events[-1].data["code"] == "provider_error"


def fail_finishing(monkeypatch: pytest.MonkeyPatch, *, times: int) -> list[int]:
    """Make the first ``times`` finalisations fail as a dropped connection would."""
    calls: list[int] = []
    finish = TurnStore.finish

    async def flaky(self: TurnStore, *args: Any) -> Message:
        calls.append(len(calls) + 1)
        if len(calls) <= times:
            raise StorageError("database error: the server closed the connection")
        return await finish(self, *args)

    monkeypatch.setattr(TurnStore, "finish", flaky)
    return calls


class TestSweep:
    async def test_the_sweep_marks_untouched_streaming_replies_and_spares_touched_ones(
        self, adb: DatabaseManager[Async]
    ) -> None:
        settings = adb.settings.model_copy(update={"turn_heartbeat_seconds": 0.05})
        runtime = ChatRuntime(adb, AgentManager(adb, settings), settings)
        touched, untouched = await new_turn(runtime, adb), await new_turn(runtime, adb)
        async with (
            aclosing(touched.events()) as one,
            aclosing(untouched.events()) as other,
        ):
            kept = (await anext(one)).data["message_id"]
            lost = (await anext(other)).data["message_id"]
            await anyio.sleep(0.2)  # four heartbeats with neither touched
            assert await runtime.store.heartbeat({uuid.UUID(kept)}) == 1
            assert await runtime.sweep() == [uuid.UUID(lost)]
            assert (await adb.messages.get(kept)).status == "streaming"
            swept = await adb.messages.get(lost)
            assert swept.status == "error"
            assert swept.metadata["error"] == "the server stopped during the turn"
            assert swept.metadata["provider"] == "echo"  # merged into, not replaced
