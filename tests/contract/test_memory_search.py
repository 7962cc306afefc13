"""Contract: embedding models, full-text matching and the search primitives behind recall,
the same on every backend."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from agentkeep import DatabaseManager, Memory, MemoryCreate, MemoryUpdate, Sync, ValidationError
from agentkeep.repositories.memories import vector_index_name


def _add(
    db: DatabaseManager[Sync], content: str, vector: list[float] | None = None, **kw: Any
) -> Memory:
    return db.memories.add(MemoryCreate(content=content, embedding=vector, **kw))


class TestEmbeddingModels:
    def test_an_embedding_is_filed_under_its_model(self, db: DatabaseManager[Sync]) -> None:
        named = _add(db, "a", [1.0, 0.0, 0.0], embedding_model="toy-3")
        unnamed = _add(db, "b", [0.0, 1.0])
        bare = _add(db, "c")
        assert (named.embedding_model, unnamed.embedding_model, bare.embedding_model) == (
            "toy-3",
            "unnamed-2",
            None,
        )
        assert db.memories.get(named.id).embedding_model == "toy-3"
        models = {m.name: (m.dimension, m.memories) for m in db.memories.models()}
        assert models == {"toy-3": (3, 1), "unnamed-2": (2, 1)}
        registered = db.memories.model("toy-3")
        assert registered is not None
        assert registered.dimension == 3
        assert db.memories.model("nope") is None

    def test_a_model_has_one_dimension_and_nothing_is_written_otherwise(
        self, db: DatabaseManager[Sync]
    ) -> None:
        _add(db, "a", [1.0, 0.0, 0.0], embedding_model="toy")
        with pytest.raises(ValidationError, match="makes 3") as caught:
            db.memories.add_many(
                [
                    MemoryCreate(content="fine", embedding=[0.0, 1.0, 0.0], embedding_model="toy"),
                    MemoryCreate(content="bad", embedding=[1.0, 1.0], embedding_model="toy"),
                ]
            )
        assert caught.value.field == "embedding"
        assert [m.content for m in db.memories.list().items] == ["a"]
        assert db.memories.register_model("toy", 3).dimension == 3  # again: a no-op
        with pytest.raises(ValidationError):
            db.memories.register_model("toy", 4)

    def test_model_names_are_checked(self, db: DatabaseManager[Sync]) -> None:
        for name in ("", " x", "a b", "x'; drop table memories; --", "é" * 3, "m" * 201):
            with pytest.raises(ValueError, match="embedding_model"):
                MemoryCreate(content="x", embedding=[1.0], embedding_model=name)
            with pytest.raises(ValidationError):
                db.memories.register_model(name, 3)
        with pytest.raises(ValidationError) as caught:
            _add(db, "x", None, embedding_model="toy")  # a model without an embedding
        assert caught.value.field == "embedding_model"
        assert db.memories.list().items == []

    def test_an_update_refiles_the_embedding(self, db: DatabaseManager[Sync]) -> None:
        memory = _add(db, "a", [1.0, 0.0], embedding_model="two")
        moved = db.memories.update(
            memory.id, MemoryUpdate(embedding=[1.0, 2.0, 3.0], embedding_model="three")
        )
        assert moved.embedding_model == "three"
        cleared = db.memories.update(memory.id, MemoryUpdate(embedding=None))
        assert (cleared.embedding, cleared.embedding_model) == (None, None)
        with pytest.raises(ValidationError) as caught:
            db.memories.update(memory.id, MemoryUpdate(embedding_model="two"))
        assert caught.value.field == "embedding_model"

    def test_re_embedding_moves_memories_to_a_model_and_can_resume(
        self, db: DatabaseManager[Sync]
    ) -> None:
        old = [_add(db, f"m{i}", [1.0, float(i)], embedding_model="old") for i in range(5)]
        _add(db, "bare")
        assert db.memories.count_not_embedded_with("new") == 6
        first = db.memories.not_embedded_with("new", limit=4)
        assert [key for key, _ in first] == sorted(key for key, _ in first)
        assert db.memories.set_embeddings("new", [(key, [1.0, 0.0, 0.0]) for key, _ in first]) == 4
        assert db.memories.count_not_embedded_with("new") == 2
        rest = db.memories.not_embedded_with("new", limit=10)
        assert {content for _, content in rest} <= {f"m{i}" for i in range(5)} | {"bare"}
        db.memories.set_embeddings("new", [(key, [0.0, 1.0, 0.0]) for key, _ in rest])
        assert db.memories.count_not_embedded_with("new") == 0
        again = db.memories.get(old[0].id)
        assert (again.embedding_model, again.updated_at) == ("new", old[0].updated_at)
        with pytest.raises(ValidationError):
            db.memories.set_embeddings("new", [(old[0].id, [1.0, 0.0])])


class TestVectorSearch:
    def test_a_query_of_an_unknown_model_is_refused_not_empty(
        self, db: DatabaseManager[Sync]
    ) -> None:
        assert db.memories.search([1.0, 0.0], k=3) == []  # an empty store has nothing to find
        _add(db, "a", [1.0, 0.0, 0.0], embedding_model="toy")
        with pytest.raises(ValidationError, match="toy \\(3 dimensions\\)") as caught:
            db.memories.search([1.0, 0.0, 0.0], embedding_model="other")
        assert caught.value.field == "embedding"
        with pytest.raises(ValidationError, match="makes 3") as caught:
            db.memories.search([1.0, 0.0], embedding_model="toy")
        assert caught.value.field == "embedding"
        ((found, similarity),) = db.memories.search([2.0, 0.0, 0.0], embedding_model="toy")
        assert found.content == "a"
        assert similarity == pytest.approx(1.0)

    def test_models_are_searched_apart(self, db: DatabaseManager[Sync]) -> None:
        a = _add(db, "a", [1.0, 0.0], embedding_model="x")
        _add(db, "b", [1.0, 0.0], embedding_model="y")
        assert [m.id for m, _ in db.memories.search([1.0, 0.0], embedding_model="x")] == [a.id]

    def test_time_filters(self, db: DatabaseManager[Sync]) -> None:
        a = _add(db, "a", [1.0, 0.0], embedding_model="x")
        later = datetime.now(UTC) + timedelta(seconds=1)
        assert db.memories.search([1.0, 0.0], embedding_model="x", created_after=later) == []
        hits = db.memories.search([1.0, 0.0], embedding_model="x", created_before=later)
        assert [m.id for m, _ in hits] == [a.id]
        assert db.memories.list(created_after=later).items == []
        assert [m.id for m in db.memories.list(created_before=later).items] == [a.id]
        with pytest.raises(ValidationError) as caught:
            db.memories.list(created_after=datetime(2026, 1, 1))  # no time zone
        assert caught.value.field == "created_after"

    def test_postgres_builds_one_hnsw_index_per_model_and_uses_it(
        self, db: DatabaseManager[Sync]
    ) -> None:
        if db.service.dialect != "postgresql":
            pytest.skip("PostgreSQL's vector index")
        _add(db, "a", [1.0, 0.0, 0.0], embedding_model="toy")
        with db.service.unit("read") as conn:
            conn.execute(text("SET LOCAL enable_seqscan = off"))
            conn.execute(text("SET LOCAL enable_sort = off"))  # the order must come from HNSW
            indexes = conn.execute(
                text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'memories'")
            ).all()
            plan = "\n".join(
                conn.execute(
                    text(
                        "EXPLAIN SELECT id FROM memories "
                        "WHERE embedding_model = 'toy' ORDER BY "
                        "(embedding::vector(3)) <=> '[1,0,0]' LIMIT 5"
                    )
                ).scalars()
            )
        definitions: dict[str, str] = dict(indexes)
        name = vector_index_name("toy")
        assert "hnsw" in definitions[name]
        assert "vector_cosine_ops" in definitions[name]
        assert name in plan
        with db.unit("read") as uow:  # the search's settings hold for its transaction only
            uow.memories.search([1.0, 0.0, 0.0], k=30, embedding_model="toy")
            shown = [
                uow.connection.execute(text(f"SHOW hnsw.{name}")).scalar()
                for name in ("ef_search", "iterative_scan")
            ]
        assert shown == ["60", "relaxed_order"]


class TestFullTextMatch:
    def test_whole_words_in_any_case_best_first(self, db: DatabaseManager[Sync]) -> None:
        one = _add(db, "Order 4711 was paid by Alice")
        both = _add(db, "alice paid order 4711 and order 4712")
        _add(db, "Bob likes tea")
        found = db.memories.match("ALICE 4711")
        assert {m.id for m in found} == {one.id, both.id}
        assert db.memories.match("4712")[0].id == both.id
        assert db.memories.match("ali") == []  # whole words
        assert db.memories.match("  ¡!  ") == []  # no words, nothing found

    def test_filters_and_limits(self, db: DatabaseManager[Sync]) -> None:
        mine = _add(db, "coffee at noon", user_id="u1", memory_type="fact")
        _add(db, "coffee at night", user_id="u2", memory_type="fact")
        _add(db, "coffee again", user_id="u1", memory_type="preference")
        found = db.memories.match("coffee", user_id="u1", memory_type="fact")
        assert [m.id for m in found] == [mine.id]
        assert len(db.memories.match("coffee", limit=2)) == 2
        with pytest.raises(ValidationError) as caught:
            db.memories.match("coffee", limit=0)
        assert caught.value.field == "limit"

    def test_hostile_and_unicode_queries_are_just_words(self, db: DatabaseManager[Sync]) -> None:
        cyrillic = _add(db, "Пользователь купил кофе за 300 рублей")
        cjk = _add(db, "用户 喜欢 咖啡")
        assert [m.id for m in db.memories.match("КОФЕ")] == [cyrillic.id]
        assert [m.id for m in db.memories.match("咖啡")] == [cjk.id]
        for hostile in ('"', "a OR", "NEAR(a b)", "*", "content:x", "') OR 1=1 --", "a & | !b"):
            db.memories.match(hostile)  # never a syntax error
        assert db.memories.match("x" * 10_000) == []

    def test_a_word_inside_text_written_without_spaces_is_found(
        self, db: DatabaseManager[Sync]
    ) -> None:
        coffee = _add(db, "我买了咖啡 300 元")
        japanese = _add(db, "日本語のテキスト")
        tea = _add(db, "Bob likes tea")
        assert [m.id for m in db.memories.match("咖啡")] == [coffee.id]
        assert [m.id for m in db.memories.match("テキスト")] == [japanese.id]
        assert db.memories.match("茶") == []
        # any word: a full-text match ranks before one found only inside the text
        assert [m.id for m in db.memories.match("咖啡 tea")] == [tea.id, coffee.id]
        assert [m.id for m in db.memories.match("咖啡 tea", limit=1)] == [tea.id]
        assert [m.id for m in db.memories.match("咖啡 300")] == [coffee.id]

    def test_an_edited_memory_is_found_by_its_new_words(self, db: DatabaseManager[Sync]) -> None:
        memory = _add(db, "likes tea")
        db.memories.update(memory.id, MemoryUpdate(content="likes coffee"))
        assert db.memories.match("tea") == []
        assert [m.id for m in db.memories.match("coffee")] == [memory.id]
        db.memories.delete(memory.id)
        assert db.memories.match("coffee") == []


class TestBatches:
    def test_retention_batches_page_by_id_without_embeddings(
        self, db: DatabaseManager[Sync]
    ) -> None:
        ids = sorted(_add(db, f"m{i}", [1.0, float(i)]).id for i in range(7))
        first = db.memories.retention_batch(limit=4)
        rest = db.memories.retention_batch(after=first[-1].id, limit=4)
        assert [m.id for m in first + rest] == ids
        assert all(m.embedding is None for m in first + rest)
        assert db.memories.delete_many([ids[0], ids[1], uuid.uuid4()]) == 2
        assert db.memories.delete_many([]) == 0
        assert len(db.memories.get_many([ids[2], ids[0], ids[3]])) == 2


class TestSimilarities:
    def test_computed_where_the_vectors_are_for_the_model_only(
        self, db: DatabaseManager[Sync]
    ) -> None:
        same = _add(db, "a", [1.0, 0.0, 0.0], embedding_model="toy")
        ortho = _add(db, "b", [0.0, 2.0, 0.0], embedding_model="toy")
        other = _add(db, "c", [1.0, 0.0], embedding_model="two")
        bare = _add(db, "d")
        found = db.memories.similarities(
            [same.id, ortho.id, other.id, bare.id, uuid.uuid4()], [3.0, 0.0, 0.0], "toy"
        )
        assert set(found) == {same.id, ortho.id}
        assert found[same.id] == pytest.approx(1.0)
        assert found[ortho.id] == pytest.approx(0.0, abs=1e-6)
        assert db.memories.similarities([], [1.0, 0.0, 0.0], "toy") == {}

    def test_candidates_can_leave_their_vectors_out(self, db: DatabaseManager[Sync]) -> None:
        _add(db, "coffee", [1.0, 0.0], embedding_model="x")
        ((light, _),) = db.memories.search([1.0, 0.0], embedding_model="x", with_embedding=False)
        (matched,) = db.memories.match("coffee", with_embedding=False)
        assert light.embedding is None
        assert matched.embedding is None
        assert light.embedding_model == matched.embedding_model == "x"
