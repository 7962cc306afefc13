"""LangChain chat history over agentkeep: :class:`AgentkeepChatMessageHistory`.

A session is an agentkeep conversation, so the HTTP API, the CLI and the web UI show it: the
session id names the conversation with that id (a UUID) or, failing that, the conversation of
user ``"langchain"`` whose ``chat_id`` it is (the indexed (user, chat) lookup chat platforms use:
LangChain is the platform, the session its chat); the first message added to a new session
creates that conversation. ``external_ref`` is left alone: conversation workflows keep there the
reference of the operation a conversation completed (a spreadsheet row, say). A LangGraph
thread's conversation (``integrations.langgraph``) is one of user ``"langgraph"``, so a history
and a thread with the same id never share messages; a history given the id of a thread's
conversation (its UUID) reads the thread's messages, and refuses to change them (the graph's
state would no longer match).

Each LangChain message is one agentkeep message: its role (human → ``user``, ai →
``assistant``, tool and function → ``tool``, system → ``system``, a chat message by its
role), its text as ``content``, an AI message's tool calls and token usage in their columns,
and the whole message as LangChain writes it (``message_to_dict``) in ``metadata["langchain"]``,
from which it is read back unchanged: ids, names, additional kwargs, response metadata, content
blocks and all. Messages written by agentkeep itself (the chat API) read as the closest LangChain
message.

Requires the ``langchain`` extra (``pip install agentkeep[langchain]``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from typing import Any

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    message_to_dict,
    messages_from_dict,
)
from sqlalchemy import select

from agentkeep.config import Settings
from agentkeep.db.tables import conversations
from agentkeep.errors import ConflictError, ValidationError
from agentkeep.models.common import validate_input
from agentkeep.models.conversation import ConversationCreate, Message, MessageCreate
from agentkeep.models.enums import Role
from agentkeep.repositories import graphs
from agentkeep.repositories.base import Async, Sync
from agentkeep.repositories.facade import DatabaseManager, Unit, connect_sync

LANGCHAIN_KEY = "langchain"
"""The metadata key holding a message as LangChain wrote it."""

_ROLES = {
    "human": Role.USER,
    "user": Role.USER,
    "ai": Role.ASSISTANT,
    "assistant": Role.ASSISTANT,
    "system": Role.SYSTEM,
    "developer": Role.SYSTEM,
    "tool": Role.TOOL,
    "function": Role.TOOL,
}


def text_of(content: str | list[Any]) -> str:
    """The text of a message's content: itself, or its text blocks joined."""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and isinstance(block.get("text"), str):
            parts.append(block["text"])
    return "".join(parts)


def to_message_create(message: BaseMessage) -> MessageCreate:
    """The agentkeep message for a LangChain one (see the module's documentation)."""
    kind = message.type
    role = _ROLES.get(str(getattr(message, "role", kind)).lower(), Role.USER)
    if kind in _ROLES:
        role = _ROLES[kind]
    fields: dict[str, Any] = {
        "role": role,
        "content": text_of(message.content),
        "metadata": {LANGCHAIN_KEY: message_to_dict(message)},
    }
    if isinstance(message, ToolMessage):  # how agentkeep pairs a result with its call
        fields["metadata"]["tool_call_id"] = message.tool_call_id
    if isinstance(message, AIMessage):
        if message.tool_calls:
            fields["tool_calls"] = [
                {"id": call.get("id"), "name": call["name"], "arguments": call.get("args", {})}
                for call in message.tool_calls
            ]
        usage = message.usage_metadata
        if usage:
            fields["input_tokens"] = usage.get("input_tokens")
            fields["output_tokens"] = usage.get("output_tokens")
    return validate_input(MessageCreate, fields)


def to_langchain(message: Message) -> BaseMessage:
    """The LangChain message an agentkeep one holds (or the closest one, if agentkeep wrote
    it)."""
    stored = message.metadata.get(LANGCHAIN_KEY)
    if isinstance(stored, dict):
        return messages_from_dict([stored])[0]
    key = str(message.id)
    if message.role is Role.USER:
        return HumanMessage(content=message.content, id=key)
    if message.role is Role.SYSTEM:
        return SystemMessage(content=message.content, id=key)
    if message.role is Role.TOOL:
        call = message.metadata.get("tool_call_id")
        return ToolMessage(content=message.content, tool_call_id=str(call or ""), id=key)
    calls = [
        {"id": call.id, "name": call.name, "args": call.arguments, "type": "tool_call"}
        for call in message.tool_calls or []
        if not isinstance(call, dict)
    ]
    return AIMessage(content=message.content, tool_calls=calls, id=key)


def session_conversation(
    uow: Unit, session_id: str, *, platform: str = graphs.SESSIONS, create: bool = True
) -> uuid.UUID | None:
    """The conversation of a session (or, ``platform=graphs.THREADS``, a thread) id, made (the
    platform as its user, that id as its chat id and title) when there is none and
    ``create``."""
    found = graphs.conversation_for(uow.connection, session_id, platform)
    if found is not None or not create:
        return found
    return uow.conversations.create(_conversation_for(session_id, platform)).id


def _writable(uow: Unit, conversation: uuid.UUID, session_id: str) -> uuid.UUID:
    """``conversation``, if a history may write to it: a LangGraph thread's (named by its id)
    shows the graph's state, which only the graph changes. Only a session id that is the
    conversation's own id can name another platform's conversation: it alone is looked at."""
    try:
        named = uuid.UUID(session_id)
    except ValueError:
        named = None
    if named != conversation:
        return conversation  # found by chat id among the histories' conversations
    owner = uow.connection.execute(
        select(conversations.c.user_id).where(conversations.c.id == conversation)
    ).scalar()
    if owner == graphs.THREADS:
        raise ConflictError(
            f"conversation {conversation} shows a LangGraph thread's messages, which only the "
            "graph changes: read them here, add them through the graph",
            field="session_id",
        )
    return conversation


def _conversation_for(session_id: str, platform: str = graphs.SESSIONS) -> ConversationCreate:
    fields = {"user_id": platform, "chat_id": session_id, "title": session_id}
    try:
        return validate_input(ConversationCreate, fields)
    except ValidationError as exc:  # named after what the caller gave
        message = str(exc).replace("chat_id", "session_id", 1)
        raise ValidationError(message, field="session_id") from exc


def sync_store(db: DatabaseManager[Any]) -> DatabaseManager[Sync]:
    """The sync face of a store (the same service: one pool, one set of caches)."""
    return db if db.mode is Sync else DatabaseManager(db.service, Sync)


def async_store(db: DatabaseManager[Any]) -> DatabaseManager[Async]:
    """The async face of a store (the same service)."""
    return db if db.mode is Async else DatabaseManager(db.service, Async)


class AgentkeepChatMessageHistory(BaseChatMessageHistory):
    """A LangChain chat history kept as an agentkeep conversation.

    Example:
        >>> import agentkeep
        >>> history = AgentkeepChatMessageHistory(agentkeep.connect("app.db"), "session-1")
        >>> history.add_messages([HumanMessage("hi"), AIMessage("hello")])
        >>> [m.content for m in history.messages]
        ['hi', 'hello']

    Args:
        db: A store from ``agentkeep.connect`` or ``agentkeep.connect_sync`` (either serves the
            sync and the async methods).
        session_id: The session: a conversation id, or any other string (up to 255
            characters), kept as the conversation's ``chat_id``.
    """

    def __init__(self, db: DatabaseManager[Any], session_id: str) -> None:
        _conversation_for(session_id)  # a session id that cannot name a conversation fails here
        self.session_id = session_id
        self._sync = sync_store(db)
        self._async = async_store(db)

    @classmethod
    def from_url(
        cls, url: Settings | str | os.PathLike[str], session_id: str
    ) -> AgentkeepChatMessageHistory:
        """A history on the store at ``url`` (as ``agentkeep.connect_sync`` takes it)."""
        return cls(connect_sync(url), session_id)

    # -- work done in one unit each -------------------------------------------------------------

    def _read(self, uow: Unit) -> list[BaseMessage]:
        conversation = session_conversation(uow, self.session_id, create=False)
        if conversation is None:
            return []
        return [to_langchain(message) for message in uow.messages.all(conversation)]

    def _adder(self, messages: Sequence[BaseMessage]) -> Any:
        rows = [to_message_create(message) for message in messages]  # checked before any write

        def add(uow: Unit) -> None:
            if not rows:
                return
            conversation = session_conversation(uow, self.session_id)
            assert conversation is not None
            _writable(uow, conversation, self.session_id)
            for row in rows:
                uow.messages.append(conversation, row)

        return add

    def _clear(self, uow: Unit) -> None:
        conversation = session_conversation(uow, self.session_id, create=False)
        if conversation is not None:
            graphs.clear_messages(uow.connection, _writable(uow, conversation, self.session_id))

    # -- BaseChatMessageHistory -----------------------------------------------------------------

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """The session's messages, oldest first."""
        return self._sync.run(self._read, "read")

    async def aget_messages(self) -> list[BaseMessage]:
        """The session's messages, oldest first (one worker-thread hop)."""
        return await self._async.run(self._read, "read")

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append messages in order, all or none (one transaction)."""
        self._sync.run(self._adder(messages))

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append messages in order, all or none (one worker-thread hop)."""
        await self._async.run(self._adder(messages))

    def clear(self) -> None:
        """Delete the session's messages (the conversation itself stays)."""
        self._sync.run(self._clear)

    async def aclear(self) -> None:
        """Delete the session's messages (one worker-thread hop)."""
        await self._async.run(self._clear)

    def __repr__(self) -> str:
        return f"AgentkeepChatMessageHistory({self._sync.service.masked_url}, {self.session_id!r})"
