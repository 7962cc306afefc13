"""Contract: memories, including similarity search, behave the same on every backend."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pytest

from agentkeep import (
    Async,
    ConversationCreate,
    DatabaseManager,
    Memory,
    MemoryCreate,
    MemoryUpdate,
    MessageCreate,
    NotFoundError,
    Sync,
    TooLargeError,
    ValidationError,
)


def _conversation(db: DatabaseManager[Sync], user_id: str = "u1") -> uuid.UUID:
    return db.conversations.create(ConversationCreate(user_id=user_id, chat_id="c1")).id


def _exact_order(query: list[float], stored: list[Memory]) -> list[uuid.UUID]:
    """Nearest first by cosine distance, ties by id, in float64 over the float32 values."""
    q = np.asarray(query, dtype=np.float32).astype(np.float64)

    def distance(memory: Memory) -> float:
        v = np.asarray(memory.embedding, dtype=np.float32).astype(np.float64)
        return float(1.0 - v @ q / (np.linalg.norm(v) * np.linalg.norm(q)))

    return [m.id for m in sorted(stored, key=lambda m: (distance(m), m.id))]


class TestMemories:
    def test_add_round_trips_every_field(self, db: DatabaseManager[Sync]) -> None:
        cid = _conversation(db)
        message = db.messages.append(cid, MessageCreate(role="user", content="Куплю кофе"))
        added = db.memories.add(
            MemoryCreate(
                content="Пользователь любит кофе ☕",
                memory_type="preference",
                importance=0.75,
                embedding=[0.1, -0.2, 0.3, 1e-3],
                metadata={"source": "chat", "tags": ["coffee", 1, None, True]},
                conversation_id=cid,
                first_message_id=message.id,
                user_id="u1",
            )
        )
        loaded = db.memories.get(added.id)
        assert loaded == added
        assert loaded.embedding is not None
        assert loaded.embedding == pytest.approx([0.1, -0.2, 0.3, 1e-3], rel=1e-6)
        assert loaded.access_count == 0
        assert loaded.last_accessed_at is None

    def test_list_pages_newest_first_by_user_or_conversation(
        self, db: DatabaseManager[Sync]
    ) -> None:
        cid = _conversation(db)
        ids = [
            db.memories.add(MemoryCreate(content=f"m{i}", user_id="u1", conversation_id=cid)).id
            for i in range(5)
        ]
        db.memories.add(MemoryCreate(content="other", user_id="u2"))
        first = db.memories.list(user_id="u1", limit=3)
        rest = db.memories.list(user_id="u1", limit=3, cursor=first.next_cursor)
        assert [m.id for m in first.items + rest.items] == ids[::-1]
        assert rest.next_cursor is None
        assert len(db.memories.list(conversation_id=cid).items) == 5
        assert len(db.memories.list().items) == 6

    def test_update_and_delete(self, db: DatabaseManager[Sync]) -> None:
        memory = db.memories.add(MemoryCreate(content="a", embedding=[1.0, 0.0]))
        changed = db.memories.update(
            memory.id, MemoryUpdate(content="b", importance=0.9, embedding=None)
        )
        assert (changed.content, changed.importance, changed.embedding) == ("b", 0.9, None)
        assert changed.updated_at >= memory.updated_at
        with pytest.raises(ValidationError) as caught:
            db.memories.update(memory.id, MemoryUpdate(importance=None))
        assert caught.value.field == "importance"
        assert db.memories.delete(memory.id) is True
        assert db.memories.delete(memory.id) is False
        assert db.memories.find(memory.id) is None
        with pytest.raises(NotFoundError) as missing:
            db.memories.update(memory.id, MemoryUpdate(content="c"))
        assert missing.value.field == "memory_id"

    def test_record_access_counts_in_one_call(self, db: DatabaseManager[Sync]) -> None:
        a = db.memories.add(MemoryCreate(content="a"))
        b = db.memories.add(MemoryCreate(content="b"))
        assert db.memories.record_access([a.id, str(b.id), uuid.uuid4()]) == 2
        assert db.memories.record_access([a.id]) == 1
        assert db.memories.record_access([]) == 0
        loaded_a, loaded_b = db.memories.get(a.id), db.memories.get(b.id)
        assert (loaded_a.access_count, loaded_b.access_count) == (2, 1)
        assert loaded_a.last_accessed_at is not None
        assert loaded_a.updated_at == a.updated_at

    def test_record_access_takes_one_id_as_well(self, db: DatabaseManager[Sync]) -> None:
        memory = db.memories.add(MemoryCreate(content="a"))
        assert db.memories.record_access(memory.id) == 1
        assert db.memories.record_access(str(memory.id)) == 1  # not walked character by character
        assert db.memories.get(memory.id).access_count == 2
        with pytest.raises(ValidationError, match="memory_ids must be an id or ids"):
            db.memories.record_access(42)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="not a valid UUID"):
            db.memories.record_access("nonsense")

    def test_search_matches_an_exact_numpy_ranking(self, db: DatabaseManager[Sync]) -> None:
        rng = np.random.default_rng(7)
        stored = [
            db.memories.add(
                MemoryCreate(
                    content=f"m{i}",
                    user_id="u1" if i % 3 else "u2",
                    embedding=[float(x) for x in rng.normal(size=8)],
                )
            )
            for i in range(24)
        ]
        query = [float(x) for x in rng.normal(size=8)]
        hits = db.memories.search(query, k=24)
        assert [m.id for m, _ in hits] == _exact_order(query, stored)
        scores = [score for _, score in hits]
        assert scores == sorted(scores, reverse=True)
        assert all(-1.0 - 1e-6 <= s <= 1.0 + 1e-6 for s in scores)
        top = db.memories.search(query, k=3, user_id="u1")
        expected = _exact_order(query, [m for m in stored if m.user_id == "u1"])[:3]
        assert [m.id for m, _ in top] == expected

    def test_search_scores_are_cosine_similarity(self, db: DatabaseManager[Sync]) -> None:
        same = db.memories.add(MemoryCreate(content="same", embedding=[1.0, 0.0, 0.0]))
        orthogonal = db.memories.add(MemoryCreate(content="ortho", embedding=[0.0, 2.0, 0.0]))
        opposite = db.memories.add(MemoryCreate(content="opposite", embedding=[-3.0, 0.0, 0.0]))
        hits = db.memories.search([5.0, 0.0, 0.0], k=3)
        assert [m.id for m, _ in hits] == [same.id, orthogonal.id, opposite.id]
        assert [score for _, score in hits] == pytest.approx([1.0, 0.0, -1.0], abs=1e-6)

    def test_search_skips_embeddings_of_another_length(self, db: DatabaseManager[Sync]) -> None:
        short = db.memories.add(MemoryCreate(content="3d", embedding=[1.0, 0.0, 0.0]))
        db.memories.add(MemoryCreate(content="4d", embedding=[1.0, 0.0, 0.0, 0.0]))
        db.memories.add(MemoryCreate(content="none"))
        hits = db.memories.search([1.0, 0.1, 0.0], k=10)
        assert [m.id for m, _ in hits] == [short.id]
        with pytest.raises(ValidationError, match="no memory is embedded with model") as caught:
            db.memories.search([1.0, 2.0], k=10)  # no 2-dimensional model: refused, not empty
        assert caught.value.field == "embedding"

    def test_search_filters_by_conversation_and_agent(self, db: DatabaseManager[Sync]) -> None:
        cid = _conversation(db)
        inside = db.memories.add(MemoryCreate(content="in", conversation_id=cid, embedding=[1, 1]))
        db.memories.add(MemoryCreate(content="out", embedding=[1, 1]))
        hits = db.memories.search([1.0, 1.0], conversation_id=str(cid))
        assert [m.id for m, _ in hits] == [inside.id]
        assert db.memories.search([1.0, 1.0], agent_id=uuid.uuid4()) == []

    def test_bad_embeddings_are_rejected(self, db: DatabaseManager[Sync]) -> None:
        bad: list[Any] = [
            [],
            [0.0, 0.0],
            [1e-50, 0.0],  # zero once stored as float32
            [1.0, float("nan")],
            [float("inf"), 1.0],
            [1e300, 1.0],  # beyond float32
            ["x"],
        ]
        for vector in bad:
            with pytest.raises(ValidationError) as caught:
                db.memories.search(vector)
            assert caught.value.field == "embedding", vector
        for vector in bad:
            with pytest.raises(ValueError, match="embedding"):
                MemoryCreate(content="x", embedding=vector)
        with pytest.raises(ValidationError) as caught:
            db.memories.search([1.0], k=0)
        assert caught.value.field == "k"

    def test_unknown_references_are_not_found_and_nothing_is_written(
        self, db: DatabaseManager[Sync]
    ) -> None:
        for field in ("conversation_id", "agent_id", "persona_id", "first_message_id"):
            with pytest.raises(NotFoundError) as missing:
                db.memories.add(MemoryCreate(content="x", **{field: uuid.uuid4()}))
            assert missing.value.field == field
        assert db.memories.list().items == []

    def test_oversized_or_unstorable_input_is_rejected(self, db: DatabaseManager[Sync]) -> None:
        with pytest.raises(TooLargeError) as too_big:
            db.memories.add(MemoryCreate(content="x" * (db.settings.max_content_bytes + 1)))
        assert too_big.value.field == "content"
        with pytest.raises(TooLargeError) as too_big:
            db.memories.add(
                MemoryCreate(content="x", metadata={"blob": "y" * db.settings.max_metadata_bytes})
            )
        assert too_big.value.field == "metadata"
        with pytest.raises(ValidationError) as caught:
            db.memories.add(MemoryCreate(content="x", metadata={"bad": float("nan")}))
        assert caught.value.field == "metadata"
        with pytest.raises(ValueError, match="importance"):
            MemoryCreate(content="x", importance=1.5)
        with pytest.raises(ValidationError) as caught:
            db.memories.get("not-a-uuid")
        assert caught.value.field == "memory_id"
        assert db.memories.list().items == []


class TestMemoriesAsync:
    @pytest.mark.anyio
    async def test_async_add_search_and_access(self, adb: DatabaseManager[Async]) -> None:
        near = await adb.memories.add(MemoryCreate(content="near", embedding=[1.0, 0.1]))
        far = await adb.memories.add(MemoryCreate(content="far", embedding=[-1.0, 0.5]))
        hits = await adb.memories.search([1.0, 0.0], k=2)
        assert [m.id for m, _ in hits] == [near.id, far.id]
        assert await adb.memories.record_access([m.id for m, _ in hits]) == 2
        assert (await adb.memories.get(near.id)).access_count == 1
