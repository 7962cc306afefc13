"""Chat turns: the user's message in, the agent's reply streamed out and stored.

A turn is checked before anything streams (the agent and the conversation exist, the input is
valid), so bad input is an ordinary 4xx; then :meth:`Turn.events` runs it. The pieces, each
testable alone:

- ``managers.turn``: the turn's state machine and the order of its events;
- ``managers.turn_store``: its store steps (the only chat module that touches the store);
- ``managers.tool_loop``: the model and tool calls;
- ``managers.post_response``: the POST_RESPONSE modules.

Turns on one conversation run one at a time in this process (a lock per conversation), so two
sends at once keep their order and a retried send waits for its first one. While
:meth:`ChatRuntime.running` is open (the API's lifespan), the replies being streamed are touched
every ``AGENTKEEP_TURN_HEARTBEAT_SECONDS``, and replies left ``streaming`` by a process that died
(untouched for three heartbeats) are marked ``error``, at start-up and then periodically.
"""

from __future__ import annotations

import logging
import uuid
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from datetime import timedelta

import anyio

from agentkeep.config import Settings
from agentkeep.db.changes import EVERYTHING, Change
from agentkeep.errors import ValidationError
from agentkeep.managers.agents import AgentManager
from agentkeep.managers.tools import ToolRunner
from agentkeep.managers.turn import Turn
from agentkeep.managers.turn_store import TurnStore
from agentkeep.managers.turn_types import ChatEvent, NewConversation, TurnInput
from agentkeep.models.common import check_json, check_text_size
from agentkeep.repositories.base import Async
from agentkeep.repositories.facade import DatabaseManager

__all__ = ["ChatEvent", "ChatRuntime", "NewConversation", "Turn", "TurnInput"]

log = logging.getLogger("agentkeep.chat")

_KNOWN_CONVERSATIONS = 10_000
"""Conversations whose agent is remembered, so a turn need not read the conversation first."""

STALE_HEARTBEATS = 3
"""A ``streaming`` reply untouched for this many heartbeats belongs to a process that died."""

INTERRUPTED = "the server stopped during the turn"


class ChatRuntime:
    """Runs chat turns for one store; one per API process."""

    def __init__(
        self, db: DatabaseManager[Async], agents: AgentManager, settings: Settings
    ) -> None:
        self.agents = agents
        self.settings = settings
        self.tools = ToolRunner(settings)
        self.store = TurnStore(db, agents, settings)
        self.inflight: set[uuid.UUID] = set()
        """The replies this process is streaming (the heartbeat touches them)."""
        self._agent_of: OrderedDict[uuid.UUID, uuid.UUID] = OrderedDict()
        self._locks: weakref.WeakValueDictionary[Hashable, anyio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self.close = db.service.changes.subscribe(self._on_change)
        """Stop following the store's changes."""

    def _on_change(self, change: Change) -> None:
        if change.kind == "conversation":  # its agent may be another now, or it is gone
            self.forget(change.key)
        elif change.kind == EVERYTHING:
            self._agent_of.clear()

    async def start(self, data: NewConversation) -> Turn:
        """A turn that starts a conversation; ``NotFoundError`` if the agent does not exist."""
        self._check(data)
        instance = await self.agents.ensure_agent_instance(data.agent_id)
        return Turn(self, instance, None, data)

    async def send(self, conversation_id: uuid.UUID, data: TurnInput) -> Turn:
        """A turn in a conversation; ``NotFoundError`` if it does not exist, ``ValidationError``
        if it has no agent to answer."""
        self._check(data)
        await self.agents.follow()  # what other processes changed: its agent may be another
        agent_id = self._agent_of.get(conversation_id)
        if agent_id is None:  # a conversation's agent rarely changes: read it once
            agent_id = await self.store.agent_of(conversation_id)
            if agent_id is None:
                raise ValidationError(
                    "this conversation has no agent to answer; set its agent_id first",
                    field="conversation_id",
                )
            self._agent_of[conversation_id] = agent_id
            if len(self._agent_of) > _KNOWN_CONVERSATIONS:
                self._agent_of.popitem(last=False)
        instance = await self.agents.ensure_agent_instance(agent_id, follow=False)
        return Turn(self, instance, conversation_id, data)

    def forget(self, conversation_id: uuid.UUID) -> None:
        """The conversation changed (its agent, or it was deleted): read it again next time."""
        self._agent_of.pop(conversation_id, None)

    def _check(self, data: TurnInput) -> None:
        """Refuse what the store would refuse, before anything streams."""
        check_text_size(data.content, self.settings.max_content_bytes, "content")
        check_json(data.metadata, self.settings.max_metadata_bytes, "metadata")

    def lock(self, key: Hashable) -> anyio.Lock:
        """The lock that turns sharing ``key`` (a conversation's id) take one at a time."""
        found = self._locks.get(key)
        if found is None:
            found = self._locks[key] = anyio.Lock()
        return found

    # -- replies left streaming by a process that died -----------------------------------------

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Sweep once, then, until the block ends, touch this process's in-flight replies every
        heartbeat and sweep every :data:`STALE_HEARTBEATS` heartbeats."""
        await self._sweep_logged()
        async with anyio.create_task_group() as group:
            group.start_soon(self._keep_alive)
            try:
                yield
            finally:
                group.cancel_scope.cancel()

    async def sweep(self) -> list[uuid.UUID]:
        """Mark ``streaming`` replies untouched for three heartbeats as ``error``."""
        age = timedelta(seconds=STALE_HEARTBEATS * self.settings.turn_heartbeat_seconds)
        return await self.store.sweep(age, INTERRUPTED)

    async def _keep_alive(self) -> None:
        beats = 0
        while True:
            await anyio.sleep(self.settings.turn_heartbeat_seconds)
            beats += 1
            if self.inflight:
                try:
                    await self.store.heartbeat(set(self.inflight))
                except Exception:  # the store is away for a moment: the next beat may pass
                    log.warning("touching the replies being streamed failed", exc_info=True)
            if beats % STALE_HEARTBEATS == 0:
                await self._sweep_logged()

    async def _sweep_logged(self) -> None:
        try:
            marked = await self.sweep()
        except Exception:
            log.warning("marking interrupted replies failed", exc_info=True)
            return
        if marked:
            log.warning("%d replies left streaming by a stopped server marked error", len(marked))
