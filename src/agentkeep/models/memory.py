"""Long-term memory: what an agent remembers, found again by meaning (embedding similarity)
and by its words, filtered by user, agent, persona, conversation, type and time.

An embedding is any non-empty list of finite floats with a direction (not all zeros: cosine
similarity is undefined for it). It is stored as float32 on every backend, with the name of the
model that made it; each model has one dimension, so a store may hold the embeddings of several
models, and a search compares a query only with vectors of its own model.

A memory may expire (``expires_at``): from then on no recall, search or list returns it, and a
sweep deletes it (``db.memory.sweep_expired()``; a LangGraph store's items' memories expire with
their items).
"""

from __future__ import annotations

import math
import uuid
from array import array
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field, StringConstraints

from agentkeep.models.common import (
    Input,
    JSONObject,
    Model,
    Name,
    Name50,
    StoredJSONObject,
    Text,
    blank,
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


def _something(content: str) -> str:
    if blank(content):
        raise ValueError(
            "must have something to remember: it is blank or only invisible characters"
        )
    return content


MemoryContent = Annotated[Text, AfterValidator(_something)]
"""What a memory says: storable text with at least one visible character (whitespace, zero-width
and other invisible characters alone are refused, as empty content is)."""

Importance = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
"""How much a memory matters, from 0 to 1."""

MemoryType = Name50
"""What kind of memory: ``episodic`` (something that happened), ``semantic`` (a summary),
``fact``, ``preference``, or any other short name."""

MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$"
ModelName = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=MODEL_NAME_PATTERN)
]
"""The name of an embedding model (``all-MiniLM-L6-v2``, ``hash-384``,
``openai:text-embedding-3-small``): letters, digits and ``. _ : / @ + -``."""


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
    embedding_model: str | None = None
    """The model that made ``embedding`` (``None`` without one)."""
    metadata: StoredJSONObject = Field(default_factory=dict)
    last_accessed_at: datetime | None = None
    access_count: int = 0
    expires_at: datetime | None = None
    """When it stops being recalled, searched or listed (``None``: never)."""
    created_at: datetime
    updated_at: datetime


class MemoryCreate(Input):
    content: MemoryContent = Field(min_length=1)
    memory_type: MemoryType | None = None
    importance: Importance = 0.5
    embedding: EmbeddingVector | None = None
    embedding_model: ModelName | None = None
    """The model that made ``embedding``; left out, the vector is filed under
    ``unnamed-<dimension>``."""
    metadata: JSONObject = Field(default_factory=dict)
    conversation_id: uuid.UUID | None = None
    agent_id: uuid.UUID | None = None
    persona_id: uuid.UUID | None = None
    first_message_id: uuid.UUID | None = None
    user_id: Name | None = None
    expires_at: AwareDatetime | None = None
    """When it stops being recalled, searched or listed: a time with a time zone, in the future
    and at most a century away; ``None``: never."""


class MemoryUpdate(Input):
    """Fields to change; those left out stay as they are (``embedding=None`` removes it)."""

    content: MemoryContent | None = Field(default=None, min_length=1)
    memory_type: MemoryType | None = None
    importance: Importance | None = None
    embedding: EmbeddingVector | None = None
    embedding_model: ModelName | None = None
    metadata: JSONObject | None = None
    expires_at: AwareDatetime | None = None
    """A new expiry (as in ``MemoryCreate``); ``None``: the memory no longer expires."""


class EmbeddingModel(Model):
    """A model whose embeddings the store holds."""

    name: str
    dimension: int
    created_at: datetime
    memories: int = 0
    """How many memories carry an embedding of this model."""


class MemoryHit(Model):
    """A memory found by a search, with its score and each part of it.

    ``score`` (0 to 1) weighs ``relevance`` against ``importance`` and ``recency`` by the store's
    settings; ``relevance`` fuses ``similarity`` (cosine, -1 to 1, of the query's embedding and
    the memory's) with ``keyword`` (the share of the query's words the memory contains, 0 to 1).
    A part that does not apply is ``None``: ``keyword`` when the query is a vector alone,
    ``similarity`` when the memory has no embedding of the query's model.
    """

    memory: Memory
    score: float
    relevance: float
    similarity: float | None
    keyword: float | None
    importance: float
    recency: float
