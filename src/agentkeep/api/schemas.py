"""Payloads the API adds to the domain models: request bodies and answers that span models."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from agentkeep.models.common import Input, Model
from agentkeep.models.conversation import Conversation, ConversationCreate, Message, MessageCreate


class ConversationStart(ConversationCreate):
    """A new conversation and, optionally, its first message, stored together."""

    message: MessageCreate | None = Field(
        default=None, description="the first message, stored in the same transaction"
    )


class ConversationStarted(Model):
    conversation: Conversation
    message: Message | None = None


class StateValue(Input):
    """The value to keep under a conversation state key: any JSON value."""

    value: Any = Field(description="any JSON value (objects, lists, strings, numbers, null)")


class Health(Model):
    """The server's health. Anyone may ask; only a caller the API would let in (a valid API key,
    or any caller while the server has no keys) is told the details: ``version`` and
    ``database``."""

    status: str = Field(description="ok, or unavailable when the database cannot be reached")
    latency_ms: float = Field(description="the database's round trip for a trivial query, in ms")
    version: str | None = Field(default=None, description="the server's version (details)")
    database: dict[str, Any] | None = Field(
        default=None,
        description="backend, location (password masked), server version, host, port, status "
        "message (details)",
    )
