"""Every store access of a chat turn, in one place; each method is one unit of work (one
worker-thread hop).

A turn touches the store in two transactions and a few single writes, and never holds a
connection while the model runs:

- :meth:`TurnStore.prepare`, one worker-thread hop: the user's message embedded and the memories
  for the prompt recalled in a read unit (``managers.turn_memory``), then one transaction: start
  the conversation if new, store the user's message (idempotent by ``client_id``), count the
  access to the memories recalled and keep the message as a memory, store the reply as
  ``streaming`` (its metadata names the message it answers, ``in_reply_to``, and the memories
  recalled, ``memories``), read the history and the modules. For a retried send, whose user
  message is already stored and answered, it stores nothing and returns that answer.
- :meth:`TurnStore.add_tool_result`: each tool result as a ``tool`` message, as it arrives.
- :meth:`TurnStore.finish`, one transaction: the reply finalised, the agent's token totals and
  the tools' usage counted; :meth:`TurnStore.mark_error` when that cannot be done.
- :meth:`TurnStore.heartbeat` and :meth:`TurnStore.sweep` keep replies from staying
  ``streaming`` after their process died (``repositories.turns``).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from contextlib import suppress
from datetime import timedelta
from typing import Any

from agentkeep.config import Settings
from agentkeep.db.types import utcnow
from agentkeep.errors import NotFoundError
from agentkeep.managers.agents import AgentInstance, AgentManager
from agentkeep.managers.prompt import CONVERSATION_SCOPE, history_limits, trim
from agentkeep.managers.turn_memory import Query, Recalled, TurnMemory
from agentkeep.managers.turn_types import Answered, NewConversation, Prepared, TurnInput
from agentkeep.models.conversation import (
    Conversation,
    ConversationCreate,
    Message,
    MessageCreate,
    MessageUpdate,
)
from agentkeep.models.enums import MessageStatus, Role
from agentkeep.repositories import turns
from agentkeep.repositories.base import Async, Sync, in_worker_thread
from agentkeep.repositories.facade import DatabaseManager, Unit

IN_REPLY_TO = "in_reply_to"
"""The reply's metadata key naming the user message it answers."""


class TurnStore:
    """The store steps of chat turns, over one store."""

    def __init__(
        self, db: DatabaseManager[Async], agents: AgentManager, settings: Settings
    ) -> None:
        self._db = db
        self._sync = DatabaseManager(db.service, Sync)
        """The same store, for units of work run in this module's own worker-thread hop."""
        self._agents = agents
        self._settings = settings
        self.memory = TurnMemory(db, settings)

    async def agent_of(self, conversation_id: uuid.UUID) -> uuid.UUID | None:
        """The agent that answers in a conversation; ``NotFoundError`` if there is none."""
        conversation = await self._db.conversations.get(conversation_id)
        return conversation.agent_id

    async def prepare(
        self, instance: AgentInstance, conversation_id: uuid.UUID | None, data: TurnInput
    ) -> Prepared | Answered:
        return await in_worker_thread(self._embed_then_prepare, instance, conversation_id, data)

    def _embed_then_prepare(
        self, instance: AgentInstance, conversation_id: uuid.UUID | None, data: TurnInput
    ) -> Prepared | Answered:
        query = self.memory.embed(data.content)  # no connection is held while the embedder runs
        recalled = Recalled()
        if self.memory.recalls(query):
            recalled = self._sync.run(
                lambda uow: self._recall(uow, conversation_id, data, query), "read"
            )
        return self._sync.run(
            lambda uow: self._prepare(uow, instance, conversation_id, data, query, recalled)
        )

    def _recall(
        self, db: Unit, conversation_id: uuid.UUID | None, data: TurnInput, query: Query
    ) -> Recalled:
        if conversation_id is None:
            assert isinstance(data, NewConversation)
            user_id = data.user_id
        else:
            user_id = db.conversations.get(conversation_id).user_id
        memory = self.memory
        return memory.recall(db, query, user_id=user_id, conversation_id=conversation_id)

    def _prepare(
        self,
        db: Unit,
        instance: AgentInstance,
        conversation_id: uuid.UUID | None,
        data: TurnInput,
        query: Query,
        recalled: Recalled,
    ) -> Prepared | Answered:
        conversation = self._conversation(db, instance, conversation_id, data)
        user = db.messages.append(
            conversation.id,
            MessageCreate(
                role=Role.USER, content=data.content, client_id=data.client_id,
                metadata=data.metadata,
            ),
        )  # fmt: skip
        if data.client_id is not None:
            answer = self._answer_to(db, user)
            if answer is not None:
                return Answered(conversation, user, answer)
        self.memory.count_access(db, recalled)
        self.memory.capture(db, query, conversation, user)
        history = self._history(db, instance, conversation, before=user.seq)
        metadata: dict[str, Any] = {
            "provider": instance.provider, "model": instance.model, IN_REPLY_TO: str(user.id),
        }  # fmt: skip
        if recalled.hits:
            metadata["memories"] = recalled.shown(self._settings.max_metadata_bytes // 2)
        reply = db.messages.append(
            conversation.id,
            MessageCreate(
                role=Role.ASSISTANT, content="", status=MessageStatus.STREAMING, metadata=metadata
            ),
        )
        modules, after, on_demand = self._agents.modules(db, instance)
        return Prepared(
            conversation, user, reply, history, modules, after, on_demand,
            memories=recalled.hits, warnings=recalled.warnings,
        )  # fmt: skip

    def _conversation(
        self,
        db: Unit,
        instance: AgentInstance,
        conversation_id: uuid.UUID | None,
        data: TurnInput,
    ) -> Conversation:
        agent = instance.agent
        if conversation_id is not None:
            return db.conversations.get(conversation_id)
        assert isinstance(data, NewConversation)
        if data.client_id is not None:  # a retried start continues the first one's conversation
            found = turns.find_started(
                db.connection, agent_id=agent.id, user_id=data.user_id, client_id=data.client_id
            )
            if found is not None:
                return db.conversations.get(found)
        return db.conversations.create(
            ConversationCreate(
                agent_id=agent.id, persona_id=agent.persona_id, user_id=data.user_id,
                chat_id=data.chat_id, title=data.title or data.content[:80],
            )
        )  # fmt: skip

    def _answer_to(self, db: Unit, user: Message) -> Message | None:
        """The reply stored with ``user`` (the same transaction stored them one after the
        other), if ``user`` was stored before and answered."""
        following = db.messages.list(user.conversation_id, after=user.seq, limit=1).items
        if following and following[0].metadata.get(IN_REPLY_TO) == str(user.id):
            return following[0]
        return None

    def _history(
        self, db: Unit, instance: AgentInstance, conversation: Conversation, *, before: int
    ) -> list[Message]:
        """The earlier turns the agent sees (``managers.prompt``, History): one query."""
        agent = instance.agent
        if not agent.include_history:
            return []
        messages, tokens = history_limits(agent.model_settings)
        if messages == 0:
            return []
        across = agent.model_settings.get("history_scope") != CONVERSATION_SCOPE
        found = db.messages.history(
            agent.id,
            conversation.user_id if across else None,
            limit=min(messages, self._settings.max_page_size),
            conversation_id=conversation.id,
            before=before,
        )
        return trim(found, messages, tokens)

    async def add_tool_result(self, conversation_id: uuid.UUID, data: MessageCreate) -> Message:
        return await self._db.messages.append(conversation_id, data)

    async def finish(
        self,
        instance: AgentInstance,
        reply_id: uuid.UUID,
        update: MessageUpdate,
        used_tools: list[uuid.UUID],
    ) -> Message:
        def finish(db: Unit) -> Message:
            message = db.messages.update(reply_id, update)  # its tokens count for the agent too
            for tool_id in used_tools:
                with suppress(NotFoundError):  # deleted during the turn: no count to keep
                    db.tools.record_use(tool_id)
            return message

        return await self._db.run(finish)

    async def mark_error(self, reply: Message, error: str) -> Message:
        """The reply as ``error`` and nothing else changed (for when finishing it failed)."""
        metadata = {**reply.metadata, "error": error, "error_code": "internal_error"}
        update = MessageUpdate(status=MessageStatus.ERROR, metadata=metadata)
        return await self._db.messages.update(reply.id, update)

    async def get_message(self, message_id: uuid.UUID) -> Message:
        return await self._db.messages.get(message_id)

    async def last_messages(self, conversation_id: uuid.UUID, n: int) -> list[Message]:
        """The last ``n`` messages of the conversation, oldest first."""
        return await self._db.messages.last(conversation_id, n)

    async def put_state(
        self, conversation_id: uuid.UUID, key: str, value: str, *, module_id: uuid.UUID
    ) -> None:
        await self._db.states.put(conversation_id, key, value, module_id=module_id)

    @property
    def db(self) -> DatabaseManager[Async]:
        """The store (for the steps kept elsewhere, such as running a module)."""
        return self._db

    async def heartbeat(self, reply_ids: Collection[uuid.UUID]) -> int:
        """Touch these in-flight replies (one statement); how many are still streaming."""

        return await self._db.run(lambda db: turns.touch_streaming(db.connection, reply_ids))

    async def sweep(self, older_than: timedelta, reason: str) -> list[uuid.UUID]:
        """Mark ``streaming`` replies untouched for ``older_than`` as ``error``."""

        metadata = {"error": reason, "error_code": "interrupted"}

        def sweep(db: Unit) -> list[uuid.UUID]:
            return turns.fail_stale(db.connection, before=utcnow() - older_than, metadata=metadata)

        return await self._db.run(sweep)
