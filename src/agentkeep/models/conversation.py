"""Conversations and their messages."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from agentkeep.models.common import (
    Count,
    Input,
    JSONObject,
    Model,
    Name,
    Name50,
    Name100,
    Text,
    Text500,
)
from agentkeep.models.enums import ConversationStatus, MessageStatus, Role


class Conversation(Model):
    id: uuid.UUID
    agent_id: uuid.UUID | None = None
    persona_id: uuid.UUID | None = None
    user_id: str | None = None
    chat_id: str | None = None
    title: str | None = None
    status: ConversationStatus = ConversationStatus.ACTIVE
    operation_type: str | None = None
    agent_state: str | None = None
    external_ref: str | None = None
    provider_type: str | None = None
    provider_config: JSONObject = Field(default_factory=dict)
    metadata: JSONObject = Field(default_factory=dict)
    message_count: int = 0
    last_message_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class ConversationCreate(Input):
    agent_id: uuid.UUID | None = None
    persona_id: uuid.UUID | None = None
    user_id: Name | None = None
    chat_id: Name | None = None
    title: Text500 | None = None
    status: ConversationStatus = ConversationStatus.ACTIVE
    operation_type: Name100 | None = None
    agent_state: Name | None = None
    external_ref: Name | None = None
    provider_type: Name50 | None = None
    provider_config: JSONObject = Field(default_factory=dict)
    metadata: JSONObject = Field(default_factory=dict)


class ConversationUpdate(Input):
    """Fields to change; those left out stay as they are (``None`` clears a nullable field)."""

    title: Text500 | None = None
    status: ConversationStatus | None = None
    operation_type: Name100 | None = None
    agent_state: Name | None = None
    external_ref: Name | None = None
    agent_id: uuid.UUID | None = None
    persona_id: uuid.UUID | None = None
    provider_type: Name50 | None = None
    provider_config: JSONObject | None = None
    metadata: JSONObject | None = None


class Message(Model):
    id: uuid.UUID
    conversation_id: uuid.UUID
    seq: int
    role: Role
    content: str
    thinking: str | None = None
    tool_calls: list[Any] | None = None
    metadata: JSONObject = Field(default_factory=dict, validation_alias="extra_data")
    input_tokens: int | None = None
    output_tokens: int | None = None
    status: MessageStatus = MessageStatus.COMPLETE
    message_id: str | None = None
    reply_to_message_id: str | None = None
    client_id: str | None = None
    created_at: datetime
    updated_at: datetime


class MessageCreate(Input):
    role: Role
    content: Text
    thinking: Text | None = None
    tool_calls: list[Any] | None = None
    metadata: JSONObject = Field(default_factory=dict)
    input_tokens: Count | None = None
    output_tokens: Count | None = None
    status: MessageStatus = MessageStatus.COMPLETE
    message_id: Name | None = None
    reply_to_message_id: Name | None = None
    client_id: Name | None = None


class MessageUpdate(Input):
    """Finalising or correcting a message (a streamed reply, token counts, metadata)."""

    content: Text | None = None
    thinking: Text | None = None
    tool_calls: list[Any] | None = None
    metadata: JSONObject | None = None
    input_tokens: Count | None = None
    output_tokens: Count | None = None
    status: MessageStatus | None = None
    message_id: Name | None = None
