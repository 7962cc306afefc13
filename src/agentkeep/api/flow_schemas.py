"""Request bodies and answers of the chat-bot workflow routes (``api.routers.flows`` and
``api.routers.chat_users``)."""

from __future__ import annotations

import uuid

from pydantic import Field

from agentkeep.models.common import Input, JSONObject, Model, PlatformId
from agentkeep.models.conversation_flow import ConversationContext, TimeZone
from agentkeep.models.enums import ConversationStatus
from agentkeep.repositories.conversation_flow import MAX_AGE_SECONDS

MAX_SECONDS = MAX_AGE_SECONDS
"""The longest age a request may name (a century): longer is surely a mistake."""


class ConversationComplete(Input):
    """Complete a conversation: its external reference and, optionally, its final data."""

    external_ref: PlatformId = Field(
        description="where the finished record went, such as a spreadsheet row number"
    )
    complete_data: JSONObject | None = Field(
        default=None, description="the final data, stored as the `complete` snapshot"
    )


class AbandonIdle(Input):
    idle_seconds: int = Field(
        ge=0, le=MAX_SECONDS, description="abandon active conversations idle at least this long"
    )


class Abandoned(Model):
    abandoned: int = Field(description="how many conversations were abandoned")
    conversation_ids: list[uuid.UUID]


class Purge(Input):
    status: ConversationStatus = Field(description="purge conversations in this status")
    older_than_seconds: int = Field(
        ge=0, le=MAX_SECONDS, description="not updated for at least this long"
    )
    dry_run: bool = Field(default=False, description="only count what would be deleted")


class Purged(Model):
    purged: int = Field(description="how many were deleted (with a dry run: would be)")
    dry_run: bool


class ContextPage(ConversationContext):
    """The conversation's context; its ``message_history`` is one page of the thread."""

    history_next_after: int | None = Field(
        default=None,
        description="pass as `history_after` for the next page of the thread (none: no more)",
    )


class SessionPut(Input):
    """What to record with the user's activity now; fields left out keep their values."""

    last_conversation_id: uuid.UUID | None = None
    timezone: TimeZone | None = Field(default=None, description="an IANA time zone name")
    metadata: JSONObject | None = None
