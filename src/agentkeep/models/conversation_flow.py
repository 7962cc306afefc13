"""Chat-bot conversation workflows: structured data snapshots, agent questions, per-module state,
user sessions, operation templates, and the context an agent resumes a conversation from.

A chat bot collects structured data over several turns. Each turn may store a ``partial``
snapshot (a JSON object), a ``missing_fields`` snapshot (a list of field names) and a question the
agent asked; the last turn stores the ``complete`` snapshot. Snapshots are appended, never
updated, so the history of what was understood when is kept.
"""

from __future__ import annotations

import uuid
import zoneinfo
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from agentkeep.models.common import (
    Input,
    JSONObject,
    Model,
    Name,
    Name64,
    Name100,
    PlatformId,
    StoredJSON,
    StoredJSONList,
    StoredJSONObject,
    Text,
    UTCDatetime,
)
from agentkeep.models.conversation import Conversation, Message
from agentkeep.models.enums import DataType

# -- structured data (conversation_data) ---------------------------------------------------------


class ConversationData(Model):
    """One snapshot of a conversation's structured data."""

    id: uuid.UUID
    conversation_id: uuid.UUID
    data_type: DataType
    content: StoredJSONObject | StoredJSONList
    created_at: datetime


class ConversationDataCreate(Input):
    """A snapshot to store: ``partial`` and ``complete`` hold an object, ``missing_fields`` a list
    of field names."""

    data_type: DataType
    content: JSONObject | list[Any]

    @field_validator("content", mode="before")
    @classmethod
    def _content_fits_type(cls, content: Any, info: ValidationInfo) -> Any:
        # before the union's own check, which would name its members ("content.dict[str,any]")
        data_type = info.data.get("data_type")
        if data_type is DataType.MISSING_FIELDS:
            if not isinstance(content, list) or not all(isinstance(n, str) for n in content):
                raise ValueError("missing_fields content must be a list of field names")
        elif data_type is not None and not isinstance(content, dict):
            raise ValueError(f"{data_type.value} content must be a JSON object")
        return content


# -- agent questions -----------------------------------------------------------------------------


class AgentQuestion(Model):
    """A question an agent asked to fill in missing fields, and its answer once given."""

    id: uuid.UUID
    conversation_id: uuid.UUID
    agent_name: str
    question: str
    missing_fields: list[str] = Field(default_factory=list)
    message_id: str | None = None
    """The chat platform's id of the message that carried the question."""
    answer: str | None = None
    asked_at: datetime
    answered_at: datetime | None = None


class AgentQuestionCreate(Input):
    agent_name: Name
    question: Text
    missing_fields: list[Name] = Field(default_factory=list)
    message_id: PlatformId | None = None


class AgentAnswer(Input):
    answer: Text
    answered_at: UTCDatetime | None = None


# -- conversation state --------------------------------------------------------------------------


class ConversationState(Model):
    """One key's value, for a conversation, optionally scoped to a persona and a module."""

    id: uuid.UUID
    conversation_id: uuid.UUID
    persona_id: uuid.UUID | None = None
    module_id: uuid.UUID | None = None
    state_key: str
    state_value: StoredJSON = None
    created_at: datetime
    updated_at: datetime


# -- user sessions -------------------------------------------------------------------------------


class UserSession(Model):
    """A user's activity in one chat: where they left off and their time zone."""

    id: uuid.UUID
    user_id: str
    chat_id: str
    last_conversation_id: uuid.UUID | None = None
    timezone: str = "UTC"
    metadata: StoredJSONObject = Field(default_factory=dict)
    last_activity_at: datetime
    created_at: datetime


def _known_zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        raise ValueError(f"is not a known IANA time zone: {value[:64]!r}") from None
    return value


TimeZone = Annotated[Name64, AfterValidator(_known_zone)]
"""An IANA time zone name such as ``Europe/Moscow`` or ``UTC``."""


class UserSessionTouch(Input):
    user_id: PlatformId
    chat_id: PlatformId
    last_conversation_id: uuid.UUID | None = None
    timezone: TimeZone | None = None
    metadata: JSONObject | None = None


# -- operation templates -------------------------------------------------------------------------


class OperationTemplate(Model):
    """A worked example of an operation (sample input, expected output) kept for prompting."""

    id: uuid.UUID
    operation_type: str
    template_name: str
    sample_input: str
    expected_output: StoredJSONObject = Field(default_factory=dict)
    usage_count: int = 0
    created_at: datetime
    updated_at: datetime


class OperationTemplateCreate(Input):
    operation_type: Name100
    template_name: Name
    sample_input: Text
    expected_output: JSONObject = Field(default_factory=dict)


class OperationTemplateUpdate(Input):
    """Fields to change; those left out stay as they are."""

    operation_type: Name100 | None = None
    template_name: Name | None = None
    sample_input: Text | None = None
    expected_output: JSONObject | None = None


# -- the context an agent resumes from -----------------------------------------------------------


class ConversationContext(Conversation):
    """Everything an agent needs to resume a conversation (``get_conversation_context``).

    The conversation's own fields, plus:
    """

    partial_data: StoredJSONObject | None = None
    """The latest ``partial`` snapshot, or ``None``."""
    complete_data: StoredJSONObject | None = None
    """The latest ``complete`` snapshot, or ``None``."""
    missing_fields: list[str] = Field(default_factory=list)
    """What is still missing after the latest partial data: of the fields the latest
    ``missing_fields`` snapshot names (failing that, the fields the latest question asked for),
    those the latest ``partial`` snapshot does not hold."""
    message_history: list[Message] = Field(default_factory=list)
    """Messages of the thread, oldest first: the most recent ones, or a page of the whole thread
    (``history_after``)."""
    agent_questions: list[AgentQuestion] = Field(default_factory=list)
    """The most recent questions, oldest first."""
    last_bot_message_id: str | None = None
    """The chat platform's id of the latest assistant message that has one."""
