"""How a memory search ranks what it found: one score from relevance, importance and recency.

For each candidate (found by vector similarity or by its words):

- ``similarity``: cosine similarity of the query's embedding and the memory's (-1 to 1), when the
  memory has an embedding of the query's model;
- ``keyword``: the share of the query's distinct words that the memory contains (0 to 1), when
  the query has text;
- ``relevance``: ``similarity`` (below 0 counts as 0) alone for a vector query, otherwise
  ``(1 - KEYWORD_SHARE) * similarity + KEYWORD_SHARE * keyword``: an exact name or number
  lifts a memory even when the embedder misses it;
- ``recency``: ``0.5 ** (days since last accessed, or since made, / half-life)``;
- ``score``: the weighted mean of relevance, importance and recency, by the store's weights.

Ties in score go to the older id, so every backend returns the same order for the same data.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from agentkeep.config import Settings
from agentkeep.models.common import unspaced
from agentkeep.models.memory import Memory, MemoryHit
from agentkeep.repositories.memories import words

KEYWORD_SHARE = 0.3
"""How much of a text query's relevance comes from its words (the rest from similarity)."""
SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class Weights:
    """How a score weighs its parts, and how fast recency fades."""

    relevance: float = 0.6
    importance: float = 0.2
    recency: float = 0.2
    half_life_days: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Weights:
        return cls(
            relevance=settings.memory_relevance_weight,
            importance=settings.memory_importance_weight,
            recency=settings.memory_recency_weight,
            half_life_days=settings.memory_half_life_days,
        )


@dataclass(frozen=True, slots=True)
class Candidate:
    """A memory a search found, with its cosine similarity to the query if it has one."""

    memory: Memory
    similarity: float | None


def recency(memory: Memory, now: datetime, half_life_days: float) -> float:
    """``0.5 ** (age / half-life)``, the age counted from the last access (or the making)."""
    since = memory.last_accessed_at or memory.created_at
    age_days = max(0.0, (now - since).total_seconds() / SECONDS_PER_DAY)
    return float(0.5 ** (age_days / half_life_days))


def keyword(terms: Sequence[str], content: str) -> float:
    """The share of ``terms`` (distinct casefolded words) that ``content`` contains."""
    if not terms:
        return 0.0
    present = set(words(content))
    folded = content.casefold()
    return sum(term in present or (unspaced(term) and term in folded) for term in terms) / len(
        terms
    )


def cosine(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Cosine similarity of two vectors of one length (``None`` if either has no length)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError("vectors of different lengths")
    norms = float(np.linalg.norm(x) * np.linalg.norm(y))
    return None if norms == 0 else float(x @ y) / norms


def rank(
    candidates: Iterable[Candidate],
    *,
    terms: Sequence[str] | None,
    weights: Weights,
    now: datetime,
    k: int,
    min_score: float = 0.0,
) -> list[MemoryHit]:
    """The ``k`` best candidates scoring at least ``min_score``, best first (see the module).

    ``terms``: the query's words, or ``None`` for a query by vector alone."""
    total = weights.relevance + weights.importance + weights.recency
    hits: list[MemoryHit] = []
    seen: set[uuid.UUID] = set()
    for candidate in candidates:
        memory = candidate.memory
        if memory.id in seen:
            continue
        seen.add(memory.id)
        similarity = candidate.similarity
        positive = max(0.0, similarity) if similarity is not None else 0.0
        if terms is None:
            matched = None
            relevance = positive
        else:
            matched = keyword(terms, memory.content)
            relevance = (1 - KEYWORD_SHARE) * positive + KEYWORD_SHARE * matched
        fresh = recency(memory, now, weights.half_life_days)
        if total > 0:
            score = (
                weights.relevance * relevance
                + weights.importance * memory.importance
                + weights.recency * fresh
            ) / total
        else:
            score = relevance
        if score < min_score:
            continue
        hits.append(
            MemoryHit(
                memory=memory,
                score=score,
                relevance=relevance,
                similarity=similarity,
                keyword=matched,
                importance=memory.importance,
                recency=fresh,
            )
        )
    hits.sort(key=lambda hit: (-hit.score, hit.memory.id))
    return hits[:k]
