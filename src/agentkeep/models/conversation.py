"""Conversations and their messages."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from agentkeep.models.common import (
    Count,
    Input,
    JSONObject,
    Model,
    Name,
    Name50,
    Name100,
    PlatformId,
    StoredJSONObject,
    Text,
    Text500,
    stored,
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
    provider_config: StoredJSONObject = Field(default_factory=dict)
    metadata: StoredJSONObject = Field(default_factory=dict)
    message_count: int = 0
    last_message_at: datetime | None = None
    input_tokens: int = 0
    """The tokens of its messages (kept by every message write)."""
    output_tokens: int = 0
    created_at: datetime
    updated_at: datetime


class ConversationCreate(Input):
    agent_id: uuid.UUID | None = None
    persona_id: uuid.UUID | None = None
    user_id: PlatformId | None = None
    chat_id: PlatformId | None = None
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


class ToolCallRecord(Model):
    """One tool call of a reply, as it is stored with the message.

    ``id`` pairs the call with its result (the ``tool`` message whose metadata has that
    ``tool_call_id``); the chat runtime always sets it, calls recorded by hand may leave it out.
    ``is_error`` says whether the tool failed. Other keys (a provider's ``type``, say) are kept.

    A record dumps the keys it was given, no more, so what was sent or stored reads back
    unchanged. A call stored in the chat-completions shape (``{"id", "type": "function",
    "function": {"name", "arguments": "<JSON text>"}}``) reads with its name and arguments taken
    from ``function``, and still dumps as it was stored.
    """

    model_config = ConfigDict(extra="allow", json_schema_mode_override="validation")

    id: Text | None = None
    name: Text
    arguments: JSONObject = Field(default_factory=dict)
    is_error: bool = False

    @model_validator(mode="wrap")
    @classmethod
    def _chat_completions_shape(
        cls, data: Any, handler: ModelWrapValidatorHandler[ToolCallRecord]
    ) -> ToolCallRecord:
        if (
            not isinstance(data, dict)
            or "name" in data
            or not isinstance(data.get("function"), dict)
        ):
            return handler(data)
        function = data["function"]
        record = handler({**data, "name": function.get("name"), "arguments": _arguments(function)})
        record.__pydantic_fields_set__.difference_update({"name", "arguments"})  # derived
        return record

    @model_serializer(mode="wrap")
    def _as_given(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        dumped: dict[str, Any] = handler(self)
        left_out = type(self).model_fields.keys() - self.model_fields_set
        return {key: value for key, value in dumped.items() if key not in left_out}


def _arguments(function: dict[str, Any]) -> dict[str, Any]:
    """A chat-completions call's arguments (JSON text) as an object; ``{}`` if they are not one."""
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except (ValueError, RecursionError):  # RecursionError: nested beyond the parser
            return {}
    return arguments if isinstance(arguments, dict) else {}


class Message(Model):
    id: uuid.UUID
    conversation_id: uuid.UUID
    seq: int
    role: Role
    content: str
    thinking: str | None = None
    tool_calls: Annotated[list[ToolCallRecord | dict[str, Any]] | None, BeforeValidator(stored)] = (
        None
    )
    """The reply's tool calls; a call an older release stored in another shape reads back as
    the object it is, so reading history never fails on it."""
    metadata: StoredJSONObject = Field(default_factory=dict)
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
    tool_calls: list[ToolCallRecord] | None = None
    metadata: JSONObject = Field(default_factory=dict)
    input_tokens: Count | None = None
    output_tokens: Count | None = None
    status: MessageStatus = MessageStatus.COMPLETE
    message_id: PlatformId | None = None
    reply_to_message_id: PlatformId | None = None
    client_id: Name | None = None


class MessageUpdate(Input):
    """Finalising or correcting a message (a streamed reply, token counts, metadata)."""

    content: Text | None = None
    thinking: Text | None = None
    tool_calls: list[ToolCallRecord] | None = None
    metadata: JSONObject | None = None
    input_tokens: Count | None = None
    output_tokens: Count | None = None
    status: MessageStatus | None = None
    message_id: PlatformId | None = None
