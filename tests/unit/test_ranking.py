"""The arithmetic of a memory search's score: relevance, importance, recency."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from agentkeep.memory.ranking import (
    KEYWORD_SHARE,
    Candidate,
    Weights,
    cosine,
    keyword,
    rank,
    recency,
)
from agentkeep.models.memory import Memory

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def _memory(
    content: str = "m",
    *,
    importance: float = 0.5,
    age: timedelta = timedelta(0),
    accessed: timedelta | None = None,
    key: int = 1,
) -> Memory:
    return Memory(
        id=uuid.UUID(int=key),
        content=content,
        importance=importance,
        created_at=NOW - age,
        updated_at=NOW - age,
        last_accessed_at=None if accessed is None else NOW - accessed,
    )


def test_recency_halves_every_half_life_counted_from_the_last_access() -> None:
    assert recency(_memory(), NOW, 30) == pytest.approx(1.0)
    assert recency(_memory(age=timedelta(days=30)), NOW, 30) == pytest.approx(0.5)
    assert recency(_memory(age=timedelta(days=60)), NOW, 30) == pytest.approx(0.25)
    used = _memory(age=timedelta(days=60), accessed=timedelta(days=30))
    assert recency(used, NOW, 30) == pytest.approx(0.5)
    future = _memory(age=-timedelta(days=1))  # a clock ahead: never above 1
    assert recency(future, NOW, 30) == pytest.approx(1.0)


def test_keyword_is_the_share_of_query_words_present() -> None:
    assert keyword(["alice", "4711"], "Order 4711 paid by ALICE") == 1.0
    assert keyword(["alice", "bob"], "alice only") == 0.5
    assert keyword(["ali"], "alice") == 0.0  # whole words
    assert keyword([], "anything") == 0.0


def test_cosine() -> None:
    assert cosine([1.0, 0.0], [2.0, 0.0]) == pytest.approx(1.0)
    assert cosine([1.0, 0.0], [0.0, 3.0]) == pytest.approx(0.0)
    assert cosine([1.0, 0.0], [-1.0, 0.0]) == pytest.approx(-1.0)
    assert cosine([0.0, 0.0], [1.0, 0.0]) is None


def test_score_is_the_weighted_mean_of_its_parts() -> None:
    weights = Weights(relevance=0.6, importance=0.2, recency=0.2, half_life_days=30)
    memory = _memory("alice likes tea", importance=0.9, age=timedelta(days=30))
    (hit,) = rank(
        [Candidate(memory, 0.8)], terms=["alice", "coffee"], weights=weights, now=NOW, k=5
    )
    relevance = (1 - KEYWORD_SHARE) * 0.8 + KEYWORD_SHARE * 0.5
    assert hit.similarity == 0.8
    assert hit.keyword == 0.5
    assert hit.relevance == pytest.approx(relevance)
    assert hit.recency == pytest.approx(0.5)
    assert hit.importance == 0.9
    assert hit.score == pytest.approx(0.6 * relevance + 0.2 * 0.9 + 0.2 * 0.5)


def test_a_vector_query_has_no_keyword_part_and_negative_similarity_counts_zero() -> None:
    weights = Weights(relevance=1, importance=0, recency=0)
    near, opposite = _memory(key=1), _memory(key=2)
    hits = rank(
        [Candidate(opposite, -0.7), Candidate(near, 0.9)],
        terms=None,
        weights=weights,
        now=NOW,
        k=5,
    )
    assert [h.memory.id for h in hits] == [near.id, opposite.id]
    assert hits[0].keyword is None
    assert hits[0].score == pytest.approx(0.9)
    assert hits[1].relevance == 0.0
    assert hits[1].similarity == -0.7


def test_an_exact_word_lifts_a_memory_the_embedding_misses() -> None:
    weights = Weights(relevance=1, importance=0, recency=0)
    named = _memory("invoice INV-2291 from Acme", key=1)
    vague = _memory("an invoice arrived", key=2)
    hits = rank(
        [Candidate(vague, 0.35), Candidate(named, 0.05)],
        terms=["inv", "2291"],
        weights=weights,
        now=NOW,
        k=2,
    )
    assert hits[0].memory.id == named.id


def test_importance_and_recency_break_close_relevance() -> None:
    weights = Weights()
    stale = _memory(importance=0.1, age=timedelta(days=365), key=1)
    fresh = _memory(importance=0.9, key=2)
    hits = rank(
        [Candidate(stale, 0.62), Candidate(fresh, 0.6)],
        terms=None,
        weights=weights,
        now=NOW,
        k=2,
    )
    assert [h.memory.id for h in hits] == [fresh.id, stale.id]


def test_k_min_score_duplicates_and_ties() -> None:
    weights = Weights(relevance=1, importance=0, recency=0)
    a, b, c = _memory(key=3), _memory(key=1), _memory(key=2)
    candidates = [Candidate(a, 0.5), Candidate(b, 0.5), Candidate(c, 0.1), Candidate(a, 0.5)]
    hits = rank(candidates, terms=None, weights=weights, now=NOW, k=5)
    assert [h.memory.id for h in hits] == [b.id, a.id, c.id]  # ties by id, each once
    assert len(rank(candidates, terms=None, weights=weights, now=NOW, k=1)) == 1
    kept = rank(candidates, terms=None, weights=weights, now=NOW, k=5, min_score=0.4)
    assert [h.memory.id for h in kept] == [b.id, a.id]


def test_zero_weights_rank_by_relevance() -> None:
    weights = Weights(relevance=0, importance=0, recency=0)
    (hit,) = rank([Candidate(_memory(), 0.4)], terms=None, weights=weights, now=NOW, k=1)
    assert hit.score == pytest.approx(0.4)
