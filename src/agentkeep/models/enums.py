"""The enumerations stored in the database (as CHECK-constrained strings)."""

from __future__ import annotations

from enum import StrEnum


class ExecutionContext(StrEnum):
    """When a module runs."""

    IMMEDIATE = "IMMEDIATE"
    POST_RESPONSE = "POST_RESPONSE"
    ON_DEMAND = "ON_DEMAND"


class ConversationStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    ABANDONED = "abandoned"


class Role(StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class MessageStatus(StrEnum):
    COMPLETE = "complete"
    STREAMING = "streaming"
    CANCELLED = "cancelled"
    ERROR = "error"


class DataType(StrEnum):
    """Kinds of structured-data snapshot kept for a conversation."""

    PARTIAL = "partial"
    COMPLETE = "complete"
    MISSING_FIELDS = "missing_fields"
