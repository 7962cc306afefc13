"""Contract: ``db.memory`` remembers with embeddings computed by the store's embedder, and
recalls by meaning and by words, ranked, on every backend (the built-in hash embedder)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from agentkeep import (
    Async,
    ConversationCreate,
    DatabaseManager,
    MemoryCreate,
    MemoryUpdate,
    NotFoundError,
    Sync,
    ValidationError,
)

FACTS = [
    "The user's daughter is called Alice",
    "The user drinks black coffee every morning",
    "Invoice INV-2291 from Acme was paid on 3 March",
    "The user's car is a blue Volvo estate",
    "The user is allergic to peanuts",
    "Пользователь купил кофе за 300 рублей",
]


@pytest.fixture
def stocked(db: DatabaseManager[Sync]) -> DatabaseManager[Sync]:
    for i, fact in enumerate(FACTS):
        db.memory.remember(fact, user_id="u1", memory_type="fact", importance=0.5 + i / 100)
    db.memory.remember("The user's daughter is called Zoe", user_id="u2", memory_type="fact")
    return db


class TestRemember:
    def test_the_embedding_is_computed_and_filed_under_the_embedder(
        self, db: DatabaseManager[Sync]
    ) -> None:
        memory = db.memory.remember("likes tea", user_id=42, importance=0.9, metadata={"a": 1})
        embedder = db.memory.embedder
        assert memory.embedding_model == embedder.name == "hash-384"
        assert memory.embedding is not None
        assert len(memory.embedding) == embedder.dimension
        assert memory.user_id == "42"
        stored = db.memory.get(memory.id)
        assert stored.embedding == pytest.approx(memory.embedding)
        assert [m.name for m in db.memories.models()] == ["hash-384"]

    def test_a_given_vector_must_be_the_embedders_or_name_its_model(
        self, db: DatabaseManager[Sync]
    ) -> None:
        with pytest.raises(ValidationError, match="makes 384") as caught:
            db.memory.remember("x", embedding=[1.0, 0.0, 0.0])
        assert caught.value.field == "embedding"
        mine = db.memory.remember("x", embedding=[1.0, 0.0, 0.0], embedding_model="mine-3")
        assert mine.embedding_model == "mine-3"
        own = db.memory.remember("y", embedding=[1.0] * 384)
        assert own.embedding_model == "hash-384"
        with pytest.raises(ValidationError, match="give the embedding too") as named:
            db.memory.remember("z", embedding_model="mine-3")  # not silently the embedder's
        assert named.value.field == "embedding_model"

    def test_bad_input_writes_nothing(self, db: DatabaseManager[Sync]) -> None:
        cases: list[dict[str, object]] = [
            {"content": ""},
            {"content": "x", "importance": 2},
            {"content": "bad \ud800 surrogate"},
            {"content": "x", "conversation_id": "nope"},
            {"content": "x", "metadata": {"n": float("nan")}},
        ]
        for case in cases:
            with pytest.raises(ValidationError):
                db.memory.remember(**case)  # type: ignore[arg-type]
        with pytest.raises(NotFoundError) as missing:
            db.memory.remember("x", agent_id=uuid.uuid4())
        assert missing.value.field == "agent_id"
        assert db.memory.list().items == []

    @pytest.mark.parametrize("content", ["   ", "\t\n", "\u200b", " \u200b\ufeff\u2060 ", "\u3000"])
    def test_content_with_nothing_visible_is_refused_everywhere(
        self, db: DatabaseManager[Sync], content: str
    ) -> None:
        with pytest.raises(ValidationError) as caught:
            db.memory.remember(content)
        assert caught.value.field == "content"
        with pytest.raises(ValidationError) as caught:
            MemoryCreate(content=content)
        assert caught.value.field == "content"
        with pytest.raises(ValidationError) as caught:  # a model built without validation
            db.memories.add(MemoryCreate.model_construct(content=content))
        assert caught.value.field == "content"
        kept = db.memory.remember("something \u200b visible")
        with pytest.raises(ValidationError) as caught:
            db.memory.update(kept.id, MemoryUpdate(content=content))
        assert caught.value.field == "content"
        with pytest.raises(ValidationError) as caught:
            db.memories.update(kept.id, MemoryUpdate.model_construct(content=content))
        assert caught.value.field == "content"
        assert [m.content for m in db.memory.list().items] == ["something \u200b visible"]

    def test_many_at_once_are_embedded_in_a_batch(self, db: DatabaseManager[Sync]) -> None:
        cid = db.conversations.create(ConversationCreate(user_id="u1")).id
        made = db.memory.remember_many(
            [MemoryCreate(content=f"fact {i}", conversation_id=cid) for i in range(20)]
            + [MemoryCreate(content="given", embedding=[0.5] * 384)]
        )
        assert len(made) == 21
        assert {m.embedding_model for m in made} == {"hash-384"}
        assert len(db.memory.list(conversation_id=cid, limit=50).items) == 20


class TestRecall:
    def test_finds_by_meaning_and_words_best_first_with_each_part(
        self, stocked: DatabaseManager[Sync]
    ) -> None:
        hits = stocked.memory.recall("what is my daughter called", user_id="u1", k=3)
        assert hits[0].memory.content == FACTS[0]
        top = hits[0]
        assert top.similarity is not None
        assert top.keyword is not None
        assert 0 < top.keyword <= 1
        assert 0 <= top.recency <= 1
        assert top.score == pytest.approx(
            0.6 * top.relevance + 0.2 * top.importance + 0.2 * top.recency
        )
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert all(h.memory.user_id == "u1" for h in hits)

    def test_an_exact_number_is_found(self, stocked: DatabaseManager[Sync]) -> None:
        (hit,) = stocked.memory.recall("INV-2291", user_id="u1", k=1)
        assert hit.memory.content == FACTS[2]
        assert hit.keyword == 1.0

    def test_unicode_queries(self, stocked: DatabaseManager[Sync]) -> None:
        (hit,) = stocked.memory.recall("кофе 300", user_id="u1", k=1)
        assert hit.memory.content == FACTS[5]

    def test_returning_a_memory_counts_an_access(self, stocked: DatabaseManager[Sync]) -> None:
        (hit,) = stocked.memory.recall("peanuts", user_id="u1", k=1)
        stored = stocked.memory.get(hit.memory.id)
        assert stored.access_count == 1
        assert stored.last_accessed_at is not None
        # the hit shows the memory as the access it counted left it
        assert hit.memory.access_count == 1
        assert hit.memory.last_accessed_at == stored.last_accessed_at
        (again,) = stocked.memory.recall("peanuts", user_id="u1", k=1)
        assert again.memory.access_count == 2 == stocked.memory.get(hit.memory.id).access_count
        (unseen,) = stocked.memory.recall("peanuts", user_id="u1", k=1, count_access=False)
        assert unseen.memory.access_count == 2
        assert stocked.memory.get(hit.memory.id).access_count == 2

    def test_filters_min_score_and_k(self, stocked: DatabaseManager[Sync]) -> None:
        assert stocked.memory.recall("daughter", user_id="nobody") == []
        zoe = stocked.memory.recall("daughter", user_id="u2")
        assert [h.memory.content for h in zoe] == ["The user's daughter is called Zoe"]
        assert stocked.memory.recall("daughter", memory_type="preference") == []
        assert stocked.memory.recall("daughter", min_score=1.0) == []
        assert len(stocked.memory.recall("the user", k=2)) == 2

    def test_by_vector(self, stocked: DatabaseManager[Sync]) -> None:
        (vector,) = stocked.memory.embedder.embed(["blue Volvo"])
        hits = stocked.memory.recall(embedding=vector, user_id="u1", k=1)
        assert hits[0].memory.content == FACTS[3]
        assert hits[0].keyword is None
        with pytest.raises(ValidationError) as caught:
            stocked.memory.recall(embedding=[1.0, 0.0])
        assert caught.value.field == "embedding"
        with pytest.raises(ValidationError) as caught:
            stocked.memory.recall(embedding=[1.0, 0.0], embedding_model="elsewhere-2")
        assert caught.value.field == "embedding"

    def test_a_text_query_over_only_another_models_vectors_matches_by_words(
        self, db: DatabaseManager[Sync]
    ) -> None:
        tea = db.memory.remember(
            "likes tea", user_id="u", embedding=[0.1, 0.2, 0.3], embedding_model="my-model"
        )
        (hit,) = db.memory.recall("tea", user_id="u")
        assert (hit.memory.id, hit.keyword, hit.similarity) == (tea.id, 1.0, None)
        assert db.memory.recall("coffee", user_id="u") == []
        assert db.memory.recall("!!!") == []  # a text without words finds nothing, no error
        # a vector the caller gives is of a model the store must hold
        with pytest.raises(ValidationError, match="no memory is embedded with model") as caught:
            db.memory.recall(embedding=[0.5] * 384)
        assert caught.value.field == "embedding"
        with pytest.raises(ValidationError) as caught:
            db.memory.recall("tea", embedding=[0.5] * 384)
        assert caught.value.field == "embedding"

    def test_a_word_inside_text_written_without_spaces_is_recalled(
        self, db: DatabaseManager[Sync]
    ) -> None:
        coffee = db.memory.remember("我买了咖啡 300 元", user_id="u")
        db.memory.remember("我喜欢喝茶", user_id="u")
        hits = db.memory.recall("咖啡", user_id="u", min_score=0.01)
        assert hits
        assert hits[0].memory.id == coffee.id
        assert hits[0].keyword == 1.0

    def test_bad_queries(self, stocked: DatabaseManager[Sync]) -> None:
        for bad in ({}, {"query": ""}, {"query": "x", "k": 0}, {"query": "x", "min_score": 2}):
            with pytest.raises(ValidationError):
                stocked.memory.recall(**bad)
        assert isinstance(stocked.memory.recall("x" * 100_000), list)
        assert isinstance(stocked.memory.recall("!!! ??? ..."), list)


class TestChange:
    def test_new_content_is_embedded_again(self, stocked: DatabaseManager[Sync]) -> None:
        (hit,) = stocked.memory.recall("peanuts", user_id="u1", k=1)
        assert hit.memory.embedding is None  # a recall leaves the vectors out unless asked
        before = stocked.memory.get(hit.memory.id).embedding
        changed = stocked.memory.update(
            hit.memory.id, MemoryUpdate(content="allergic to shellfish")
        )
        assert before is not None
        assert changed.embedding != before
        (found,) = stocked.memory.recall("shellfish", user_id="u1", k=1)
        assert found.memory.id == hit.memory.id
        kept = stocked.memory.update(hit.memory.id, MemoryUpdate(importance=0.99))
        assert kept.embedding == changed.embedding
        assert stocked.memory.forget(hit.memory.id) is True
        assert stocked.memory.forget(hit.memory.id) is False

    def test_prune_by_lasting_score_or_age(self, db: DatabaseManager[Sync]) -> None:
        low = db.memory.remember("trivial", importance=0.0)
        high = db.memory.remember("vital", importance=1.0)
        assert db.memory.prune(below=0.5, dry_run=True) == 1
        assert {m.id for m in db.memory.list().items} == {low.id, high.id}
        progress: list[tuple[int, int]] = []
        assert db.memory.prune(below=0.5, on_batch=lambda *p: progress.append(p)) == 1
        assert progress == [(2, 1)]
        assert [m.id for m in db.memory.list().items] == [high.id]
        assert db.memory.prune(older_than=timedelta(days=1)) == 0
        with pytest.raises(ValidationError):
            db.memory.prune()
        with pytest.raises(ValidationError):
            db.memory.prune(below=3)

    def test_reindex_moves_every_memory_to_the_embedder(self, db: DatabaseManager[Sync]) -> None:
        db.memories.add(MemoryCreate(content="legacy", embedding=[1.0, 2.0, 3.0]))
        db.memories.add(MemoryCreate(content="no vector"))
        db.memory.remember("current")
        before = db.memory.recall("legacy", k=1)[0]  # found by its word: no comparable vector
        assert before.memory.content == "legacy"
        assert before.similarity is None
        assert db.memory.remaining_to_reindex() == 2
        batches: list[int] = []
        assert db.memory.reindex(batch_size=1, on_batch=batches.append) == 2
        assert batches == [1, 1]
        assert db.memory.remaining_to_reindex() == 0
        assert db.memory.reindex() == 0
        after = db.memory.recall("legacy", k=1, include_embedding=True)[0]
        assert after.memory.embedding is not None
        assert after.memory.content == "legacy"
        assert after.similarity == pytest.approx(1.0)


class TestAsync:
    @pytest.mark.anyio
    async def test_the_async_store_does_the_same_in_one_hop(
        self, adb: DatabaseManager[Async]
    ) -> None:
        memory = await adb.memory.remember("The user's cat is named Miso", user_id="u1")
        hits = await adb.memory.recall("cat name", user_id="u1")
        assert [h.memory.id for h in hits] == [memory.id]
        changed = await adb.memory.update(memory.id, MemoryUpdate(importance=0.1))
        assert changed.importance == 0.1
        assert (await adb.memory.list()).items[0].id == memory.id
        assert await adb.memory.prune(below=0.99, dry_run=True) == 1
        assert await adb.memory.forget(memory.id) is True


class TestLimits:
    def test_oversized_content_is_refused_before_it_is_embedded(
        self, db: DatabaseManager[Sync]
    ) -> None:
        from agentkeep import TooLargeError

        embedded: list[int] = []
        embedder = db.memory.embedder
        original = embedder.embed

        def counting(texts: Any) -> list[list[float]]:
            embedded.append(len(texts))
            return original(texts)

        huge = "x" * (db.settings.max_content_bytes + 1)
        try:
            object.__setattr__(embedder, "embed", counting)
            with pytest.raises(TooLargeError) as caught:
                db.memory.remember(huge)
            assert caught.value.field == "content"
            memory = db.memory.remember("small")
            with pytest.raises(TooLargeError):
                db.memory.update(memory.id, MemoryUpdate(content=huge))
        finally:
            object.__delattr__(embedder, "embed")
        assert embedded == [1]  # only the small one
        assert [m.content for m in db.memory.list().items] == ["small"]
