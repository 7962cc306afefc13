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
    status: str = Field(description="ok, or unavailable when the database cannot be reached")
    version: str
    database: dict[str, Any]
