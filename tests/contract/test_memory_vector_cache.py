"""Contract: a vector search finds what an exact search over the stored vectors finds, whoever
wrote them and whenever: on SQLite through the in-process matrix of each model's vectors
(``repositories.vector_cache``), which must follow writes from other connections and processes,
updates, re-embeddings, deletions, a trimmed change log and rolled-back transactions; on
PostgreSQL and in memory the same searches give the same answers."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text

from agentkeep import DatabaseManager, MemoryCreate, MemoryUpdate, Settings, Sync, connect_sync
from agentkeep.repositories.facade import Unit
from agentkeep.repositories.vector_cache import cache_of

SRC = Path(__file__).resolve().parents[2] / "src"
MODEL = "toy-8"
DIMENSION = 8
Ids = list[uuid.UUID]


def vector(rng: np.random.Generator) -> list[float]:
    return [float(x) for x in rng.standard_normal(DIMENSION).astype(np.float32)]


def truth(
    db: DatabaseManager[Sync], query: list[float], k: int, user: str | None = None
) -> list[uuid.UUID]:
    """The ``k`` nearest by numpy over every stored vector of the model (read from the table)."""
    everything, cursor = [], None
    while True:
        page = db.memories.list(user_id=user, limit=100, cursor=cursor)
        everything += [m for m in page.items if m.embedding_model == MODEL]
        cursor = page.next_cursor
        if cursor is None:
            break
    if not everything:
        return []
    matrix = np.array([m.embedding for m in everything], dtype=np.float64)
    target = np.array(query, dtype=np.float32).astype(np.float64)
    distance = 1 - (matrix @ target) / (np.linalg.norm(matrix, axis=1) * np.linalg.norm(target))
    order = sorted(range(len(everything)), key=lambda i: (distance[i], everything[i].id))
    return [everything[i].id for i in order[:k]]


def found(
    db: DatabaseManager[Sync], query: list[float], k: int, user: str | None = None
) -> list[uuid.UUID]:
    return [m.id for m, _ in db.memories.search(query, k=k, embedding_model=MODEL, user_id=user)]


@pytest.fixture
def other(db: DatabaseManager[Sync], settings: Settings) -> Iterator[DatabaseManager[Sync]]:
    """A second store on the same database: its own engine, connections and cache."""
    if settings.url is None or db.service.is_memory:
        yield db  # one in-memory store: nobody else can reach it
        return
    store = connect_sync(settings)
    yield store
    store.close()


class TestVectorSearchFollowsEveryWriter:
    def test_adds_updates_re_embeddings_and_deletes_from_another_store(
        self, db: DatabaseManager[Sync], other: DatabaseManager[Sync]
    ) -> None:
        rng = np.random.default_rng(3)
        queries = [vector(rng) for _ in range(5)]
        ids = [
            m.id
            for m in db.memories.add_many(
                [
                    MemoryCreate(
                        content=f"m{i}",
                        embedding=vector(rng),
                        embedding_model=MODEL,
                        user_id=f"u{i % 3}",
                    )
                    for i in range(60)
                ]
            )
        ]
        for q in queries:  # the cache is loaded now
            assert found(db, q, 7) == truth(db, q, 7)
        for step in range(40):
            target = ids[int(rng.integers(len(ids)))]
            action = step % 5
            if action == 0:
                ids.append(
                    other.memories.add(
                        MemoryCreate(
                            content="new", embedding=vector(rng), embedding_model=MODEL,
                            user_id="u1",
                        )
                    ).id
                )  # fmt: skip
            elif action == 1:
                other.memories.update(
                    target, MemoryUpdate(embedding=vector(rng), embedding_model=MODEL)
                )
            elif action == 2:
                other.memories.set_embeddings(MODEL, [(target, vector(rng))])
            elif action == 3:
                other.memories.delete(target)
                ids.remove(target)
            else:  # moved to another model, or its embedding removed: gone from this model's
                change = (
                    MemoryUpdate(embedding=[1.0, 2.0], embedding_model="other-2")
                    if step % 2
                    else MemoryUpdate(embedding=None)
                )
                other.memories.update(target, change)
            q = queries[step % len(queries)]
            assert found(db, q, 7) == truth(db, q, 7), f"after step {step}"
            assert found(db, q, 5, user="u1") == truth(db, q, 5, user="u1"), f"after step {step}"

    def test_a_write_unit_sees_its_own_vectors_and_a_rollback_leaves_no_trace(
        self, db: DatabaseManager[Sync]
    ) -> None:
        rng = np.random.default_rng(5)
        query = vector(rng)
        db.memories.add(MemoryCreate(content="far", embedding=[-x for x in query],
                                     embedding_model=MODEL))  # fmt: skip
        assert len(found(db, query, 3)) == 1

        def then_roll_back(uow: Unit) -> None:
            near = uow.memories.add(
                MemoryCreate(content="near", embedding=query, embedding_model=MODEL)
            )
            hits = uow.memories.search(query, k=3, embedding_model=MODEL)
            assert next(m.id for m, _ in hits) == near.id
            raise RuntimeError("changed my mind")

        with pytest.raises(RuntimeError, match="changed my mind"):
            db.run(then_roll_back)
        assert [m.content for m, _ in db.memories.search(query, k=3, embedding_model=MODEL)] == [
            "far"
        ]
        kept = db.memories.add(MemoryCreate(content="kept", embedding=query,
                                            embedding_model=MODEL))  # fmt: skip
        assert found(db, query, 3) == [kept.id, *truth(db, query, 3)[1:]]
        assert found(db, query, 3) == truth(db, query, 3)


@pytest.mark.sqlite
class TestTheSQLiteCache:
    @pytest.fixture(autouse=True)
    def _sqlite_file_only(self, db: DatabaseManager[Sync]) -> None:
        if db.service.dialect != "sqlite" or db.service.is_memory:
            pytest.skip("the change log of a SQLite file")

    def test_a_cache_behind_a_trimmed_log_reloads_everything(
        self, db: DatabaseManager[Sync], other: DatabaseManager[Sync]
    ) -> None:
        rng = np.random.default_rng(11)
        query = vector(rng)
        first = db.memories.add(MemoryCreate(content="a", embedding=query,
                                             embedding_model=MODEL))  # fmt: skip
        assert found(db, query, 2) == [first.id]
        other.memories.update(  # now the farthest there is
            first.id, MemoryUpdate(embedding=[-x for x in query], embedding_model=MODEL)
        )
        added = other.memories.add(MemoryCreate(content="b", embedding=vector(rng),
                                                embedding_model=MODEL))  # fmt: skip
        with other.service.unit("write") as conn:  # as the trim trigger does, past this cache
            conn.execute(text("DELETE FROM memory_vector_log WHERE seq < (SELECT max(seq) "
                              "FROM memory_vector_log)"))  # fmt: skip
        assert found(db, query, 2) == [added.id, first.id]

    def test_the_log_keeps_only_the_recent_changes(self, db: DatabaseManager[Sync]) -> None:
        with db.service.unit("write") as conn:
            conn.execute(text("UPDATE sqlite_sequence SET seq = 199990 "
                              "WHERE name = 'memory_vector_log'"))  # fmt: skip
            conn.execute(text("INSERT INTO sqlite_sequence(name, seq) SELECT "
                              "'memory_vector_log', 199990 WHERE changes() = 0"))  # fmt: skip
            conn.execute(text("INSERT INTO memory_vector_log(seq, memory_rowid) "
                              "VALUES (50000, 1), (99999, 2), (100001, 3)"))  # fmt: skip
        rng = np.random.default_rng(2)
        db.memories.add_many(
            [MemoryCreate(content=f"m{i}", embedding=vector(rng), embedding_model=MODEL)
             for i in range(12)]
        )  # fmt: skip  # seq 199991..200002: 200000 trims what is 100,000 older
        with db.service.unit("read") as conn:
            kept = list(conn.execute(text("SELECT seq FROM memory_vector_log")).scalars())
        assert min(kept) == 100001
        assert max(kept) == 200002

    def test_writes_from_another_process_are_seen(
        self, db: DatabaseManager[Sync], settings: Settings
    ) -> None:
        rng = np.random.default_rng(17)
        query = vector(rng)
        old = db.memories.add(MemoryCreate(content="old", embedding=vector(rng),
                                           embedding_model=MODEL))  # fmt: skip
        assert found(db, query, 5) == [old.id]
        script = (
            "import sys; from agentkeep import connect_sync, MemoryCreate, MemoryUpdate\n"
            "db = connect_sync(sys.argv[1])\n"
            f"db.memories.add(MemoryCreate(content='theirs', embedding={query!r}, "
            f"embedding_model={MODEL!r}))\n"
            f"db.memories.update(sys.argv[2], MemoryUpdate(embedding={[-x for x in query]!r}, "
            f"embedding_model={MODEL!r}))\n"
        )
        subprocess.run(
            [sys.executable, "-c", script, str(settings.url), str(old.id)],
            check=True,
            env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
            timeout=60,
        )
        hits = db.memories.search(query, k=5, embedding_model=MODEL)
        assert [m.content for m, _ in hits] == ["theirs", "old"]
        assert hits[0][1] == pytest.approx(1.0, abs=1e-6)
        assert hits[1][1] == pytest.approx(-1.0, abs=1e-6)
        assert found(db, query, 5) == truth(db, query, 5)

    def test_the_cache_is_used_and_compacts_freed_slots(self, db: DatabaseManager[Sync]) -> None:
        rng = np.random.default_rng(23)
        made = db.memories.add_many(
            [MemoryCreate(content=f"m{i}", embedding=vector(rng), embedding_model=MODEL)
             for i in range(2000)]
        )  # fmt: skip
        query = vector(rng)
        assert found(db, query, 10) == truth(db, query, 10)
        vectors = cache_of(db.service).models[MODEL]
        assert vectors.count == 2000
        db.memories.delete_many([m.id for m in made[:1500]])
        assert found(db, query, 10) == truth(db, query, 10)
        assert vectors.count == 500  # compacted: a quarter of the slots were free
        assert vectors.free == 0
