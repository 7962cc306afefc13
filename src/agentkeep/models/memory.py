"""Long-term memory (``conversation_memory``): what an agent remembers, found again by
meaning (embedding similarity), filtered by user, conversation or agent.

An embedding is any non-empty list of finite floats with a direction (not all zeros: cosine
similarity is undefined for it). It is stored as float32 on every backend. Its length is not fixed
by the schema, so one store may hold the embeddings of several models; a search compares the
query only with memories whose embedding has the same length.
"""

from __future__ import annotations

import math
import uuid
from array import array
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, Field

from agentkeep.models.common import (
    Input,
    JSONObject,
    Model,
    Name,
    Name50,
    StoredJSONObject,
    Text,
)

MAX_DIMENSIONS = 16_000
"""pgvector's limit for a stored ``vector``."""


def _usable(vector: list[float]) -> list[float]:
    if not all(math.isfinite(x) for x in vector):
        raise ValueError("must contain only finite numbers (no NaN or infinity)")
    stored = array("f", vector)  # what every backend keeps
    if not all(math.isfinite(x) for x in stored):
        raise ValueError("has a value beyond float32's range (about 3.4e38)")
    if not any(stored):
        raise ValueError("must not be all zeros (it has no direction to compare)")
    return vector


EmbeddingVector = Annotated[
    list[float], Field(min_length=1, max_length=MAX_DIMENSIONS), AfterValidator(_usable)
]
"""A non-empty, finite, non-zero vector of floats."""


def _float32(vector: list[float] | None) -> list[float] | None:
    return None if vector is None else array("f", vector).tolist()


StoredEmbedding = Annotated[list[float] | None, AfterValidator(_float32)]
"""An embedding as read back: float32 values, the same from every backend (PostgreSQL hands
back the shortest decimal that reads as the float32, SQLite the float32 itself)."""

Importance = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
"""How much a memory matters, from 0 to 1."""

MemoryType = Name50


class Memory(Model):
    id: uuid.UUID
    conversation_id: uuid.UUID | None = None
    agent_id: uuid.UUID | None = None
    persona_id: uuid.UUID | None = None
    first_message_id: uuid.UUID | None = None
    user_id: str | None = None
    content: str
    memory_type: str | None = None
    importance: float = 0.5
    embedding: StoredEmbedding = None
    metadata: StoredJSONObject = Field(default_factory=dict)
    last_accessed_at: datetime | None = None
    access_count: int = 0
    created_at: datetime
    updated_at: datetime


class MemoryCreate(Input):
    content: Text = Field(min_length=1)
    memory_type: MemoryType | None = None
    importance: Importance = 0.5
    embedding: EmbeddingVector | None = None
    metadata: JSONObject = Field(default_factory=dict)
    conversation_id: uuid.UUID | None = None
    agent_id: uuid.UUID | None = None
    persona_id: uuid.UUID | None = None
    first_message_id: uuid.UUID | None = None
    user_id: Name | None = None


class MemoryUpdate(Input):
    """Fields to change; those left out stay as they are (``embedding=None`` removes it)."""

    content: Text | None = Field(default=None, min_length=1)
    memory_type: MemoryType | None = None
    importance: Importance | None = None
    embedding: EmbeddingVector | None = None
    metadata: JSONObject | None = None
