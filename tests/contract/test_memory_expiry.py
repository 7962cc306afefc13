"""Contract: a memory may expire. From its ``expires_at`` on, no recall, vector search, word
match or list returns it (found by its id until swept), and ``sweep_expired`` deletes it; a bad
expiry is refused naming ``expires_at``. On every backend, SQLite's in-process vector matrix
included."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from agentkeep import DatabaseManager, MemoryCreate, MemoryUpdate, Sync, ValidationError
from agentkeep.repositories.facade import Unit

SOON = 0.3
"""Seconds until the memories that expire in these tests do."""


def _soon() -> datetime:
    return datetime.now(UTC) + timedelta(seconds=SOON)


class TestExpiry:
    def test_an_expired_memory_is_not_recalled_listed_searched_or_matched(
        self, db: DatabaseManager[Sync]
    ) -> None:
        fading = db.memory.remember("parked on level 3", user_id="u1", expires_at=_soon())
        lasting = db.memory.remember("parked the bike at home", user_id="u1")
        assert fading.expires_at is not None
        assert lasting.expires_at is None
        assert {h.memory.id for h in db.memory.recall("parked", user_id="u1")} == {
            fading.id,
            lasting.id,
        }
        time.sleep(SOON + 0.05)
        assert [h.memory.id for h in db.memory.recall("parked", user_id="u1")] == [lasting.id]
        assert fading.id not in {h.memory.id for h in db.memory.recall("level 3", k=10)}
        assert [m.id for m in db.memory.list(user_id="u1").items] == [lasting.id]
        assert [m.id for m in db.memories.match("parked level")] == [lasting.id]
        vector = db.memory.embedder.embed(["parked on level 3"])[0]
        found = db.memories.search(vector, embedding_model=db.memory.embedder.name, k=5)
        assert [memory.id for memory, _ in found] == [lasting.id]
        assert db.memory.get(fading.id).content == "parked on level 3"  # until swept
        assert db.memory.sweep_expired() == 1
        assert db.memories.find(fading.id) is None
        assert db.memory.sweep_expired() == 0
        assert db.memory.get(lasting.id).content == "parked the bike at home"

    def test_a_vector_search_still_returns_k_when_the_nearest_expired(
        self, db: DatabaseManager[Sync]
    ) -> None:
        nearest = db.memories.add(
            MemoryCreate(content="a", embedding=[1.0, 0.0], expires_at=_soon())
        )
        second = db.memories.add(MemoryCreate(content="b", embedding=[0.9, 0.1]))
        third = db.memories.add(MemoryCreate(content="c", embedding=[0.5, 0.5]))
        assert [m.id for m, _ in db.memories.search([1.0, 0.0], k=1)] == [nearest.id]
        time.sleep(SOON + 0.05)

        def nearest_two(uow: Unit) -> list[uuid.UUID]:  # a read unit: the in-process matrix
            return [m.id for m, _ in uow.memories.search([1.0, 0.0], k=2)]

        assert db.run(nearest_two, "read") == [second.id, third.id]
        hits = db.memory.recall(embedding=[1.0, 0.0], embedding_model="unnamed-2", k=2)
        assert [h.memory.id for h in hits] == [second.id, third.id]

    def test_an_expiry_can_be_moved_or_removed(self, db: DatabaseManager[Sync]) -> None:
        memory = db.memory.remember("the door code is 4711", expires_at=_soon())
        later = datetime.now(UTC) + timedelta(days=30)
        moved = db.memory.update(memory.id, MemoryUpdate(expires_at=later))
        assert moved.expires_at == later
        forever = db.memory.update(memory.id, MemoryUpdate(expires_at=None))
        assert forever.expires_at is None
        time.sleep(SOON + 0.05)
        assert [h.memory.id for h in db.memory.recall("door code")] == [memory.id]
        assert db.memory.sweep_expired() == 0

    def test_an_expiry_in_another_time_zone_is_the_same_moment(
        self, db: DatabaseManager[Sync]
    ) -> None:
        at = datetime.now(UTC) + timedelta(hours=2)
        moscow = at.astimezone(ZoneInfo("Europe/Moscow"))
        memory = db.memory.remember("meeting at noon", expires_at=moscow)
        assert memory.expires_at == at
        assert db.memory.get(memory.id).expires_at == at


class TestBadExpiry:
    @pytest.mark.parametrize(
        ("expires_at", "says"),
        [
            (datetime.now(UTC) - timedelta(seconds=1), "in the future"),
            (datetime(2000, 1, 1, tzinfo=UTC), "in the future"),
            (datetime.now(UTC) + timedelta(days=365 * 101), "at most a century"),
            (datetime(9999, 12, 31, tzinfo=UTC), "at most a century"),
            (datetime(2030, 1, 1), "timezone"),  # naive
            ("next tuesday", "datetime"),
            (-5, "in the future"),  # seconds since 1970
        ],
    )
    def test_an_expiry_not_in_the_future_within_a_century_is_refused(
        self, db: DatabaseManager[Sync], expires_at: object, says: str
    ) -> None:
        with pytest.raises(ValidationError) as refused:
            db.memory.remember("x", expires_at=expires_at)  # type: ignore[arg-type]
        assert refused.value.field == "expires_at"
        assert says in refused.value.message
        assert db.memory.list().items == []

    def test_an_update_to_a_past_expiry_is_refused_and_changes_nothing(
        self, db: DatabaseManager[Sync]
    ) -> None:
        memory = db.memory.remember("kept")
        past = datetime.now(UTC) - timedelta(minutes=1)
        with pytest.raises(ValidationError) as refused:
            db.memory.update(memory.id, MemoryUpdate(expires_at=past))
        assert refused.value.field == "expires_at"
        assert db.memory.get(memory.id).expires_at is None

    def test_a_batch_with_one_bad_expiry_stores_none(self, db: DatabaseManager[Sync]) -> None:
        good = MemoryCreate(content="good", expires_at=_soon())
        bad = MemoryCreate.model_construct(
            content="bad", expires_at=datetime.now(UTC) - timedelta(days=1)
        )
        with pytest.raises(ValidationError):
            db.memory.remember_many([good, bad])
        assert db.memory.list().items == []
