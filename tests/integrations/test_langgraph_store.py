"""LangGraph's long-term store in agentkeep, on every backend: items by namespace and key,
filters, namespace listings, time to live, and semantic search through agentkeep's memories."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from langgraph.store.base import GetOp, Item, PutOp

from agentkeep import Async, DatabaseManager, Sync, ValidationError
from agentkeep.integrations.langgraph import AgentkeepStore
from agentkeep.integrations.langgraph.store import MAX_TTL_MINUTES


class TestItems:
    def test_put_get_replace_and_delete(self, db: DatabaseManager[Sync]) -> None:
        store = AgentkeepStore(db)
        store.put(("users", "u1"), "coffee", {"text": "300 roubles", "n": 1})
        first = store.get(("users", "u1"), "coffee")
        assert first is not None
        assert (first.namespace, first.key, first.value) == (
            ("users", "u1"), "coffee", {"text": "300 roubles", "n": 1},
        )  # fmt: skip
        store.put(("users", "u1"), "coffee", {"text": "350 roubles", "n": 2})
        second = store.get(("users", "u1"), "coffee")
        assert second is not None
        assert second.value["n"] == 2
        assert second.created_at == first.created_at
        assert second.updated_at >= first.updated_at
        assert store.get(("users", "u2"), "coffee") is None
        store.delete(("users", "u1"), "coffee")
        assert store.get(("users", "u1"), "coffee") is None

    def test_a_batch_runs_in_order_and_sees_its_own_puts(self, db: DatabaseManager[Sync]) -> None:
        store = AgentkeepStore(db)
        results = store.batch(
            [
                PutOp(("a",), "k", {"v": 1}),
                GetOp(("a",), "k"),
                PutOp(("a",), "k", None),
                GetOp(("a",), "k"),
            ]
        )
        assert results[0] is None
        assert results[2] is None
        got = results[1]
        assert isinstance(got, Item)
        assert got.value == {"v": 1}
        assert results[3] is None

    def test_search_by_prefix_and_filter_with_pages(self, db: DatabaseManager[Sync]) -> None:
        store = AgentkeepStore(db)
        for n in range(5):
            store.put(("docs", "u1"), f"d{n}", {"kind": "note" if n % 2 else "bill", "n": n})
        store.put(("docs", "u2"), "other", {"kind": "note", "n": 9})
        store.put(("docsx",), "not-under", {"kind": "note", "n": 9})
        assert {i.key for i in store.search(("docs",))} == {f"d{n}" for n in range(5)} | {"other"}
        notes = store.search(("docs", "u1"), filter={"kind": "note"})
        assert sorted(i.key for i in notes) == ["d1", "d3"]
        big = store.search(("docs",), filter={"n": {"$gte": 3}, "kind": {"$ne": "bill"}})
        assert sorted(i.key for i in big) == ["d3", "other"]
        newest_first = [i.key for i in store.search(("docs", "u1"), limit=2, offset=1)]
        assert newest_first == ["d3", "d2"]
        with pytest.raises(ValidationError) as refused:
            store.search(("docs",), filter={"n": {"$near": 3}})
        assert refused.value.field == "filter"

    def test_list_namespaces(self, db: DatabaseManager[Sync]) -> None:
        store = AgentkeepStore(db)
        for namespace in [("a", "b", "c"), ("a", "b", "d"), ("a", "x"), ("z", "b", "c")]:
            store.put(namespace, "k", {"v": 1})
        assert store.list_namespaces() == [("a", "b", "c"), ("a", "b", "d"), ("a", "x"),
                                           ("z", "b", "c")]  # fmt: skip
        assert store.list_namespaces(prefix=("a", "b")) == [("a", "b", "c"), ("a", "b", "d")]
        assert store.list_namespaces(suffix=("b", "c")) == [("a", "b", "c"), ("z", "b", "c")]
        assert store.list_namespaces(prefix=("*", "b")) == [
            ("a", "b", "c"), ("a", "b", "d"), ("z", "b", "c"),
        ]  # fmt: skip
        assert store.list_namespaces(max_depth=2) == [("a", "b"), ("a", "x"), ("z", "b")]
        assert store.list_namespaces(limit=1, offset=1) == [("a", "b", "d")]

    def test_items_expire_and_are_swept(self, db: DatabaseManager[Sync]) -> None:
        store = AgentkeepStore(db, ttl={"default_ttl": 0.002})  # 120 ms
        store.put(("t",), "short", {"v": 1})
        store.put(("t",), "forever", {"v": 2}, ttl=None)
        assert store.get(("t",), "short") is not None
        time.sleep(0.25)
        assert store.get(("t",), "short") is None
        assert [i.key for i in store.search(("t",))] == ["forever"]
        assert store.sweep_ttl() == 1
        assert store.get(("t",), "forever") is not None

    def test_a_read_restarts_the_time_to_live(self, db: DatabaseManager[Sync]) -> None:
        store = AgentkeepStore(db, ttl={"default_ttl": 0.005})  # 300 ms
        store.put(("t",), "kept", {"v": 1})
        for _ in range(3):
            time.sleep(0.15)
            assert store.get(("t",), "kept") is not None  # each read restarts it
        time.sleep(0.15)
        assert store.get(("t",), "kept", refresh_ttl=False) is not None
        time.sleep(0.2)
        assert store.get(("t",), "kept") is None

    def test_a_value_must_be_an_object(self, db: DatabaseManager[Sync]) -> None:
        with pytest.raises(ValidationError) as refused:
            AgentkeepStore(db).batch([PutOp(("a",), "k", ["not", "a", "dict"])])  # type: ignore[arg-type]
        assert refused.value.field == "value"


class TestInput:
    """What the store cannot keep as asked is a ``ValidationError`` naming it, nothing written."""

    @pytest.mark.parametrize(
        ("value", "reason"),
        [
            ({"text": object()}, "not JSON serializable"),
            ({"n": float("nan")}, "not JSON compliant"),
            ({"i": float("inf")}, "not JSON compliant"),
            ({"deep": [{"k": "\ud800"}]}, "lone surrogate"),
            ({1: "a key that is not text"}, "keys must be strings"),
        ],
    )
    def test_a_value_that_is_not_storable_json_is_refused(
        self, db: DatabaseManager[Sync], value: dict[Any, Any], reason: str
    ) -> None:
        store = AgentkeepStore(db, index=True)
        with pytest.raises(ValidationError, match=reason) as refused:
            store.put(("a",), "k", value)
        assert refused.value.field == "value"
        assert store.get(("a",), "k") is None
        assert db.memory.list().items == []

    @pytest.mark.parametrize("ttl", [-5, -0.001, float("nan"), float("inf"), 1e18, True, "5"])
    def test_a_ttl_must_be_a_finite_number_of_minutes_within_a_century(
        self, db: DatabaseManager[Sync], ttl: Any
    ) -> None:
        store = AgentkeepStore(db)
        with pytest.raises(ValidationError) as refused:
            store.put(("a",), "k", {"v": 1}, ttl=ttl)
        assert refused.value.field == "ttl"
        assert store.get(("a",), "k") is None
        with pytest.raises(ValidationError):
            AgentkeepStore(db, ttl={"default_ttl": -1}).put(("a",), "k", {"v": 1})
        for fine in (0, 1, 0.5, MAX_TTL_MINUTES, None):
            store.put(("a",), f"k{fine}", {"v": 1}, ttl=fine)
        assert store.get(("a",), f"k{MAX_TTL_MINUTES}") is not None

    def test_keys_namespaces_and_queries_must_be_valid_text(
        self, db: DatabaseManager[Sync]
    ) -> None:
        store = AgentkeepStore(db, index=True)
        calls: list[tuple[Callable[[], object], str]] = [
            (lambda: store.put(("a",), "k\ud800", {"v": 1}), "key"),
            (lambda: store.put(("a\ud800",), "k", {"v": 1}), "namespace"),
            (lambda: store.get(("a",), "\ud800"), "key"),
            (lambda: store.search(("a\ud800",)), "namespace"),
            (lambda: store.search(("a",), query="coffee \ud800"), "query"),
        ]
        for call, field in calls:
            with pytest.raises(ValidationError) as refused:
                call()
            assert refused.value.field == field
        assert store.search(("a",)) == []

    def test_a_value_with_nothing_visible_to_index_is_kept_unindexed(
        self, db: DatabaseManager[Sync]
    ) -> None:
        store = AgentkeepStore(db, index={"fields": ["text"]})
        store.put(("a",), "k", {"text": " \u200b\n"})
        item = store.get(("a",), "k")
        assert item is not None
        assert item.value == {"text": " \u200b\n"}
        assert db.memory.list().items == []


class TestSemanticSearch:
    def test_a_query_finds_the_item_by_meaning_among_its_namespace(
        self, db: DatabaseManager[Sync]
    ) -> None:
        store = AgentkeepStore(db, index={"fields": ["text"]})
        store.put(("u1",), "coffee", {"text": "bought coffee for 300 roubles"})
        store.put(("u1",), "train", {"text": "train ticket to Moscow"})
        store.put(("u2",), "coffee", {"text": "bought coffee beans"})
        store.put(("u1",), "plain", {"other": "no text field"})
        found = store.search(("u1",), query="coffee roubles")
        assert found[0].key == "coffee"
        assert found[0].namespace == ("u1",)
        assert found[0].score is not None
        assert all(i.namespace == ("u1",) for i in found)
        # the items are kept as memories (what the API, the CLI and memory recall see)
        memories = db.memory.list().items
        assert len(memories) == 3
        assert {m.metadata["langgraph_store"]["key"] for m in memories} == {"coffee", "train"}
        # replacing an item replaces its memory; deleting it deletes it
        store.put(("u1",), "coffee", {"text": "bought tea"})
        assert "tea" in " ".join(m.content for m in db.memory.list().items)
        assert len(db.memory.list().items) == 3
        store.delete(("u1",), "coffee")
        store.delete(("u2",), "coffee")
        assert [m.content for m in db.memory.list().items] == ["train ticket to Moscow"]
        assert [i.key for i in store.search(("u1",), query="train")] == ["train"]

    def test_an_expired_items_memory_expires_with_it(self, db: DatabaseManager[Sync]) -> None:
        store = AgentkeepStore(db, index={"fields": ["text"]})
        store.put(("u",), "short", {"text": "ephemeral coffee"}, ttl=0.002)  # 120 ms
        store.put(("u",), "kept", {"text": "lasting coffee"}, ttl=None)
        hits = {h.memory.content: h.memory for h in db.memory.recall("coffee")}
        assert set(hits) == {"ephemeral coffee", "lasting coffee"}
        assert hits["lasting coffee"].expires_at is None
        short = hits["ephemeral coffee"]
        assert short.expires_at is not None
        assert short.expires_at - short.created_at <= timedelta(seconds=0.2)
        time.sleep(0.25)
        assert store.get(("u",), "short") is None
        assert [i.key for i in store.search(("u",), query="coffee")] == ["kept"]
        assert [h.memory.content for h in db.memory.recall("coffee")] == ["lasting coffee"]
        assert short.id not in {h.memory.id for h in db.memory.recall("ephemeral", k=10)}
        assert [m.content for m in db.memory.list().items] == ["lasting coffee"]
        assert db.memories.get(short.id).content == "ephemeral coffee"  # stored until the sweep
        assert store.sweep_ttl() == 1
        assert db.memories.find(short.id) is None
        assert [m.content for m in db.memory.list().items] == ["lasting coffee"]

    def test_a_read_that_restarts_an_items_time_to_live_restarts_its_memorys(
        self, db: DatabaseManager[Sync]
    ) -> None:
        store = AgentkeepStore(db, index={"fields": ["text"]}, ttl={"default_ttl": 0.01})
        # the first indexed put makes the model's vector index on PostgreSQL: not in the timing
        store.put(("warm",), "up", {"text": "lasting tea"}, ttl=None)

        def kept() -> list[uuid.UUID]:
            return [m.id for m in db.memory.list().items if m.content == "refreshed coffee"]

        store.put(("u",), "kept", {"text": "refreshed coffee"})  # 600 ms
        (first,) = (m for m in db.memory.list().items if m.content == "refreshed coffee")
        for _ in range(2):
            time.sleep(0.4)
            assert store.get(("u",), "kept") is not None  # each read restarts both
        assert kept() == [first.id]  # 800 ms after the put: alive through the reads
        memory = db.memory.get(first.id)
        assert memory.expires_at is not None
        assert first.expires_at is not None
        assert memory.expires_at >= first.expires_at + timedelta(seconds=0.8)
        assert first.id in {h.memory.id for h in db.memory.recall("refreshed coffee")}
        time.sleep(0.7)
        assert first.id not in {h.memory.id for h in db.memory.recall("refreshed coffee")}
        assert kept() == []

    def test_an_item_put_already_expired_indexes_nothing_recallable(
        self, db: DatabaseManager[Sync]
    ) -> None:
        store = AgentkeepStore(db, index={"fields": ["text"]})
        store.put(("u",), "gone", {"text": "instant coffee"}, ttl=0)
        assert store.get(("u",), "gone") is None
        assert db.memory.recall("coffee") == []
        assert db.memory.list().items == []

    def test_without_an_index_a_query_finds_nothing(self, db: DatabaseManager[Sync]) -> None:
        store = AgentkeepStore(db)
        store.put(("u1",), "coffee", {"text": "bought coffee"})
        assert store.search(("u1",), query="coffee") == []
        assert db.memory.list().items == []


@pytest.mark.anyio
async def test_the_async_store_does_the_same(adb: DatabaseManager[Async]) -> None:
    store = AgentkeepStore(adb, index=True)
    await store.aput(("u",), "k", {"text": "async coffee"})
    item = await store.aget(("u",), "k")
    assert item is not None
    assert item.value == {"text": "async coffee"}
    found = await store.asearch(("u",), query="coffee")
    assert [i.key for i in found] == ["k"]
    assert await store.alist_namespaces() == [("u",)]
    await store.adelete(("u",), "k")
    assert await store.aget(("u",), "k") is None
