"""Payloads of the long-term memory routes (``/api/v1/memories``).

A memory's embedding is hundreds of numbers, so answers leave it out unless asked
(``include_embedding=true``): :func:`memory_out` builds the answer with the field unset, and the
routes answer with ``response_model_exclude_unset``, so a left-out embedding is absent from the
JSON, not ``null`` (which would read as "this memory has no embedding").
"""

from __future__ import annotations

import uuid

from pydantic import Field

from agentkeep.models.common import Input, Model, Name, Name50, Text, UTCDatetime
from agentkeep.models.memory import (
    EmbeddingModel,
    EmbeddingVector,
    Memory,
    MemoryHit,
    ModelName,
    StoredEmbedding,
)

MAX_QUERY_CHARS = 10_000
"""A search's text: longer queries are refused (only the first words are matched anyway)."""


class MemoryOut(Memory):
    """A stored memory as the API answers it."""

    embedding: StoredEmbedding = Field(
        default=None,
        description="the vector (float32 values); present only with `include_embedding=true`",
    )


class MemoryHitOut(MemoryHit):
    """A memory a search found, with its score and each part of it (see ``MemoryHit``)."""

    memory: MemoryOut


class MemoryHits(Model):
    items: list[MemoryHitOut] = Field(description="best first")


class MemorySearch(Input):
    """A search by text (``q``), by an embedding, or both, with optional filters."""

    q: Text | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_QUERY_CHARS,
        description="text: embedded by the server's embedder and matched by its words",
    )
    embedding: EmbeddingVector | None = Field(
        default=None, description="a query vector (then `q` only adds word matching)"
    )
    embedding_model: ModelName | None = Field(
        default=None,
        description="the model that made `embedding` (default: the server's embedder)",
    )
    k: int = Field(default=10, ge=1, strict=True, description="how many memories, at most")
    min_score: float = Field(
        default=0.0, ge=0.0, le=1.0, allow_inf_nan=False, description="leave out lower scores"
    )
    user_id: Name | None = None
    agent_id: uuid.UUID | None = None
    persona_id: uuid.UUID | None = None
    conversation_id: uuid.UUID | None = None
    memory_type: Name50 | None = None
    created_after: UTCDatetime | None = None
    created_before: UTCDatetime | None = None
    count_access: bool = Field(default=True, description="count an access to each memory returned")
    include_embedding: bool = Field(default=False, description="answer with the vectors")


class EmbedderInfo(Model):
    name: str = Field(description="the name its embeddings are stored under")
    dimension: int | None = Field(
        description="the length of its vectors; null when it cannot say now (its endpoint, "
        "asked for the first time, failed: see `problem`)"
    )
    description: str
    problem: str | None = Field(default=None, description="why it cannot embed right now")


class MemoryModels(Model):
    """The embedding models the store holds vectors of, and the one this server embeds with."""

    embedder: EmbedderInfo
    models: list[EmbeddingModel]
    not_embedded_by_embedder: int = Field(
        description="memories the server's embedder did not embed (`db.memory.reindex()` "
        "embeds them again)"
    )


def memory_out(memory: Memory, *, include_embedding: bool) -> MemoryOut:
    """``memory`` as answered, its embedding left unset (so absent) unless asked for."""
    values = dict(memory)
    if not include_embedding:
        del values["embedding"]
    return MemoryOut.model_construct(**values)


def hit_out(hit: MemoryHit, *, include_embedding: bool) -> MemoryHitOut:
    values = dict(hit)
    values["memory"] = memory_out(hit.memory, include_embedding=include_embedding)
    return MemoryHitOut.model_construct(**values)
