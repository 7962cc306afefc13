"""A chat turn as a small state machine: prepared → streaming → finalised → after.

:meth:`Turn.events` yields :class:`ChatEvent` s in this order: ``message_start`` (ids), then any
of ``thinking``, ``token``, ``tool_call``, ``tool_result``, and last ``message_end`` (message id,
status, tokens) or ``error``. Whatever stops it — the model or a tool failing, the store failing
for a moment, the consumer closing the iterator (``GeneratorExit``) or the task being cancelled —
a ``finally`` finalises the reply before the turn ends: shielded from cancellation, retried once,
and if it still cannot be stored as it is, at least marked ``error``. A reply therefore never
stays ``streaming`` while its process lives (and the heartbeat sweep covers a process that dies).

The end status: ``complete``; ``error`` (the provider failed; the text so far is kept);
``cancelled`` (the consumer went away or pressed stop; the partial text is kept).

A retried send (same ``client_id``) whose first turn already stored its reply is answered from
the store (:meth:`Turn._again`): the same ids, the stored text, the stored end; no model call.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Hashable
from contextlib import aclosing, asynccontextmanager
from typing import TYPE_CHECKING

import anyio

from agentkeep.errors import AgentkeepError, NotFoundError
from agentkeep.managers.agents import AgentInstance
from agentkeep.managers.post_response import run_post_response, summarise
from agentkeep.managers.prompt import build_prompt, triggered
from agentkeep.managers.tool_loop import ToolLoop
from agentkeep.managers.turn_memory import memory_lines
from agentkeep.managers.turn_types import (
    Answered,
    ChatEvent,
    Draft,
    NewConversation,
    Prepared,
    TurnInput,
    end_data,
    error_data,
    start_data,
)
from agentkeep.models.conversation import Message
from agentkeep.models.enums import MessageStatus

if TYPE_CHECKING:
    from agentkeep.managers.chat import ChatRuntime

log = logging.getLogger("agentkeep.chat")

RETRY_DELAY = 0.2
"""Seconds before finalising a reply again after the store failed."""

_UNSTORED = "the reply could not be stored"
_DELETED = {
    "code": "not_found",
    "message": "the conversation was deleted during the turn: its reply is not kept",
    "field": "conversation_id",
}
_FAILED = "the turn failed on the server"


class Turn:
    """One turn, checked and ready: iterate :meth:`events` to run it."""

    def __init__(
        self,
        runtime: ChatRuntime,
        instance: AgentInstance,
        conversation_id: uuid.UUID | None,
        data: TurnInput,
    ) -> None:
        self.runtime = runtime
        self.instance = instance
        self.conversation_id = conversation_id
        self.data = data
        self.reply: Message | None = None
        """The reply as finally stored, once it is."""

    @property
    def finished(self) -> bool:
        """Whether the reply has reached its stored end (only POST_RESPONSE work may remain)."""
        return self.reply is not None

    def _lock_key(self) -> Hashable | None:
        """Turns that must not run at once: those of one conversation, and retries of a start."""
        if self.conversation_id is not None:
            return self.conversation_id
        if self.data.client_id is not None:
            assert isinstance(self.data, NewConversation)
            return ("start", self.data.agent_id, self.data.user_id, self.data.client_id)
        return None

    async def events(self) -> AsyncGenerator[ChatEvent, None]:
        """Run the turn. Closing this iterator early (the client went away) cancels the turn and
        stores the partial reply as ``cancelled``: close it with ``aclose()`` or ``aclosing``."""
        key = self._lock_key()
        async with _held(None if key is None else self.runtime.lock(key)):
            started = time.perf_counter()
            try:
                # shielded: once stored, the reply must be known here so that it is finalised
                with anyio.CancelScope(shield=True):
                    prepared = await self.runtime.store.prepare(
                        self.instance, self.conversation_id, self.data
                    )
            except AgentkeepError as exc:
                yield ChatEvent("error", exc.to_dict())
                return
            except Exception:
                log.exception("preparing a chat turn failed")
                yield ChatEvent("error", {"code": "internal_error", "message": _FAILED})
                return
            if isinstance(prepared, Answered):
                steps = self._again(prepared)
            else:
                steps = self._stream(prepared, Draft(started=started))
            async with aclosing(steps) as stream:
                async for event in stream:
                    yield event

    async def _stream(self, prepared: Prepared, draft: Draft) -> AsyncGenerator[ChatEvent, None]:
        runtime, instance = self.runtime, self.instance
        loop = ToolLoop(instance, runtime.settings, runtime.tools, runtime.store)
        runtime.inflight.add(prepared.reply.id)
        try:
            yield ChatEvent(
                "message_start",
                start_data(prepared.conversation, prepared.user_message, prepared.reply, instance),
            )
            draft.warnings += prepared.warnings
            chosen = await triggered(prepared.modules, self.data.content)
            draft.warnings += [failure.to_dict() for failure in chosen.failures]
            prompt = build_prompt(
                instance, chosen.modules, prepared.history, self.data.content,
                memories=memory_lines(prepared.memories),
            )  # fmt: skip
            async with aclosing(loop.run(prepared, prompt, draft)) as model:
                async for event in model:
                    yield event
            draft.status = MessageStatus.COMPLETE
        except AgentkeepError as exc:  # the provider failed: keep what it said so far
            draft.status, draft.failure = MessageStatus.ERROR, exc.to_dict()
        except Exception:
            log.exception("chat turn failed")
            draft.fail("internal_error", _FAILED)
        finally:  # also on GeneratorExit and cancellation: the draft says cancelled
            try:
                self.reply = await self._finalise(prepared, draft)
            finally:
                runtime.inflight.discard(prepared.reply.id)
        async with aclosing(self._end(prepared, draft)) as end:
            async for event in end:
                yield event

    async def _finalise(self, prepared: Prepared, draft: Draft) -> Message | None:
        """Store the reply's end, whatever happens meanwhile; ``None`` if the store is gone
        (the reply is then no longer touched, and the sweep marks it ``error``)."""
        stored: Message | None = None
        with anyio.CancelScope(shield=True):
            stored = await self._store_end(prepared.reply, draft)
        return stored

    async def _store_end(self, reply: Message, draft: Draft) -> Message | None:
        store, update = self.runtime.store, draft.update(reply)
        for attempt in (1, 2):
            try:
                return await store.finish(self.instance, reply.id, update, draft.used_tools)
            except NotFoundError:  # deleted with its conversation: nothing left to store or mark
                log.info("reply %s went with its conversation during the turn", reply.id)
                draft.failure = _DELETED
                return None
            except Exception:
                log.warning("finalising reply %s failed (attempt %d)", reply.id, attempt,
                            exc_info=True)  # fmt: skip
                if attempt == 1:
                    await anyio.sleep(RETRY_DELAY)
        try:  # as it is, it cannot be stored: at least it is not left streaming
            return await store.mark_error(reply, _UNSTORED)
        except Exception:
            log.exception("reply %s could not be marked as failed", reply.id)
            return None

    async def _end(self, prepared: Prepared, draft: Draft) -> AsyncGenerator[ChatEvent, None]:
        """The last event, then the POST_RESPONSE modules of a complete reply."""
        message = self.reply
        if message is None:
            unstored = {"code": "storage_error", "message": _UNSTORED}
            failure = _DELETED if draft.failure is _DELETED else unstored
            yield ChatEvent("error", {**failure, "message_id": str(prepared.reply.id)})
            return
        if message.status is MessageStatus.ERROR:
            failure = draft.failure or error_data(message)
            yield ChatEvent("error", {**failure, "message_id": str(message.id)})
            return
        yield ChatEvent("message_end", end_data(message))
        await run_post_response(
            self.instance,
            self.runtime.settings,
            self.runtime.store,
            prepared.after,
            asked=self.data.content,
            reply=message,
        )
        await summarise(
            self.instance,
            self.runtime.settings,
            self.runtime.store,
            prepared,
            last=message.seq + len(draft.calls),  # each tool call's result follows the reply
        )

    async def _again(self, answered: Answered) -> AsyncGenerator[ChatEvent, None]:
        """A retried send: the first turn's reply, from the store."""
        reply = await self._settled(answered.reply)
        self.reply = reply
        yield ChatEvent(
            "message_start",
            start_data(answered.conversation, answered.user_message, reply, self.instance),
        )
        if reply.thinking:
            yield ChatEvent("thinking", {"text": reply.thinking})
        if reply.content:
            yield ChatEvent("token", {"text": reply.content})
        if reply.status is MessageStatus.STREAMING:
            yield ChatEvent(
                "error",
                {
                    "code": "conflict",
                    "message": "this message is still being answered by another server",
                    "message_id": str(reply.id),
                },
            )
        elif reply.status is MessageStatus.ERROR:
            yield ChatEvent("error", error_data(reply))
        else:
            yield ChatEvent("message_end", end_data(reply))

    async def _settled(self, reply: Message) -> Message:
        """The reply once its turn has ended. A turn of this process has (the lock waited for
        it); one elsewhere is polled for as long as a live server would keep touching it."""
        beat = self.runtime.settings.turn_heartbeat_seconds
        deadline = time.monotonic() + 4 * beat
        while reply.status is MessageStatus.STREAMING and time.monotonic() < deadline:
            await anyio.sleep(min(0.25, beat / 2))
            reply = await self.runtime.store.get_message(reply.id)
        return reply


@asynccontextmanager
async def _held(lock: anyio.Lock | None) -> AsyncIterator[None]:
    if lock is None:
        yield
        return
    async with lock:
        yield
