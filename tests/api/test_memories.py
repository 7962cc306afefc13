"""Long-term memory over HTTP (``/api/v1/memories``) on every backend, good input and bad.

The server embeds with its default embedder (``hash-384``: lexical, so a search finds the
memories that share the query's words), which makes the rankings below exact.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from agentkeep import Settings
from agentkeep.api import create_app
from api.shapes import error_of

pytestmark = pytest.mark.anyio

API = "/api/v1/memories"
HASH = "hash-384"


async def remember(client: httpx.AsyncClient, content: str, **fields: Any) -> dict[str, Any]:
    response = await client.post(API, json={"content": content, **fields})
    assert response.status_code == 201, response.text
    memory: dict[str, Any] = response.json()
    return memory


async def search(client: httpx.AsyncClient, q: str, **params: Any) -> list[dict[str, Any]]:
    response = await client.get(f"{API}/search", params={"q": q, **params})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def unit(dimension: int, at: int = 0) -> list[float]:
    vector = [0.0] * dimension
    vector[at] = 1.0
    return vector


class TestRemember:
    async def test_a_memory_is_stored_embedded_by_the_server_without_its_vector(
        self, client: httpx.AsyncClient
    ) -> None:
        memory = await remember(
            client,
            "The user's daughter is called Alice",
            user_id="u1",
            memory_type="fact",
            importance=0.8,
            metadata={"source": "chat"},
        )
        assert memory["embedding_model"] == HASH
        assert "embedding" not in memory  # hundreds of numbers: only when asked
        assert (memory["user_id"], memory["memory_type"], memory["importance"]) == (
            "u1",
            "fact",
            0.8,
        )
        assert memory["metadata"] == {"source": "chat"}
        assert memory["access_count"] == 0
        fetched = (await client.get(f"{API}/{memory['id']}")).json()
        assert fetched == memory

    async def test_include_embedding_answers_with_the_vector(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.post(
            f"{API}?include_embedding=true", json={"content": "tea with milk"}
        )
        assert response.status_code == 201
        created = response.json()
        assert len(created["embedding"]) == 384
        fetched = (await client.get(f"{API}/{created['id']}?include_embedding=true")).json()
        assert fetched["embedding"] == created["embedding"]
        listed = (await client.get(f"{API}?include_embedding=true")).json()["items"]
        assert listed[0]["embedding"] == created["embedding"]
        hits = await search(client, "tea", include_embedding="true")
        assert hits[0]["memory"]["embedding"] == created["embedding"]
        assert "embedding" not in (await search(client, "tea"))[0]["memory"]

    async def test_a_given_embedding_is_kept_under_its_model(
        self, client: httpx.AsyncClient
    ) -> None:
        memory = await remember(
            client, "a picture", embedding=[0.6, 0.8, 0.0], embedding_model="clip-3"
        )
        assert memory["embedding_model"] == "clip-3"
        stored = (await client.get(f"{API}/{memory['id']}?include_embedding=true")).json()
        assert stored["embedding"] == pytest.approx([0.6, 0.8, 0.0])

    async def test_an_embedding_of_another_length_than_the_embedders_is_refused(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.post(API, json={"content": "x", "embedding": [1.0, 2.0]})
        error = error_of(response, 422)
        assert error["field"] == "embedding"
        assert "384" in error["message"]
        await remember(client, "y", embedding=[1.0, 0.0], embedding_model="tiny")
        response = await client.post(
            API, json={"content": "z", "embedding": [1.0, 0.0, 0.0], "embedding_model": "tiny"}
        )
        assert error_of(response, 422)["field"] == "embedding"
        assert len((await client.get(API)).json()["items"]) == 1

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({}, "content"),
            ({"content": ""}, "content"),
            ({"content": "   "}, "content"),
            ({"content": "\t\n"}, "content"),
            ({"content": "\u200b"}, "content"),
            ({"content": 5}, "content"),
            ({"content": "a\ud800b"}, "content"),
            ({"content": "a\x00b"}, "content"),
            ({"content": "x", "importance": "high"}, "importance"),
            ({"content": "x", "importance": 2}, "importance"),
            ({"content": "x", "embedding": []}, "embedding"),
            ({"content": "x", "embedding": [0.0, 0.0]}, "embedding"),
            ({"content": "x", "embedding": ["a"]}, "embedding.0"),
            (
                {"content": "x", "embedding": [1.0], "embedding_model": "bad name"},
                "embedding_model",
            ),
            ({"content": "x", "embedding_model": "m"}, "embedding_model"),
            ({"content": "x", "agent_id": "nope"}, "agent_id"),
            ({"content": "x", "metadata": [1]}, "metadata"),
            ({"content": "x", "metadata": {"k": "\udfff"}}, "metadata"),
            ({"content": "x", "surprise": 1}, "surprise"),
        ],
    )
    async def test_bad_input_is_a_422_naming_the_field_and_stores_nothing(
        self, client: httpx.AsyncClient, body: dict[str, Any], field: str
    ) -> None:
        raw = json.dumps(body).encode()  # ASCII: a lone surrogate goes as its escape
        response = await client.post(API, content=raw, headers={"content-type": "application/json"})
        assert error_of(response, 422)["field"] == field
        assert (await client.get(API)).json()["items"] == []

    async def test_a_body_that_is_not_json_is_a_400(self, client: httpx.AsyncClient) -> None:
        for raw in (b"{", b'{"content": "\xff"}'):
            response = await client.post(
                API, content=raw, headers={"content-type": "application/json"}
            )
            assert error_of(response, 400)["code"] == "invalid_json"

    async def test_deep_metadata_is_refused(self, client: httpx.AsyncClient) -> None:
        deep: Any = 1
        for _ in range(100):
            deep = {"a": deep}
        response = await client.post(API, json={"content": "x", "metadata": deep})
        assert error_of(response, 422)["field"] == "metadata"

    async def test_content_over_the_limit_is_a_413(self, client: httpx.AsyncClient) -> None:
        response = await client.post(API, json={"content": "a" * 1_000_001})
        error = error_of(response, 413)
        assert error["field"] == "content"
        assert (await client.get(API)).json()["items"] == []

    async def test_a_reference_to_nothing_is_a_404(self, client: httpx.AsyncClient) -> None:
        missing = str(uuid.uuid4())
        for field in ("agent_id", "conversation_id", "persona_id", "first_message_id"):
            response = await client.post(API, json={"content": "x", field: missing})
            assert error_of(response, 404)["field"] == field

    async def test_a_memory_belongs_to_an_agent_and_a_conversation(
        self, client: httpx.AsyncClient
    ) -> None:
        agent = (await client.post("/api/v1/agents", json={"name": "a"})).json()
        started = await client.post(
            "/api/v1/conversations/start",
            json={"agent_id": agent["id"], "message": {"role": "user", "content": "hi"}},
        )
        conversation, message = started.json()["conversation"], started.json()["message"]
        memory = await remember(
            client,
            "said hi",
            agent_id=agent["id"],
            conversation_id=conversation["id"],
            first_message_id=message["id"],
        )
        assert memory["first_message_id"] == message["id"]
        listed = (await client.get(API, params={"conversation_id": conversation["id"]})).json()
        assert [m["id"] for m in listed["items"]] == [memory["id"]]


class TestList:
    async def test_newest_first_in_keyset_pages(self, client: httpx.AsyncClient) -> None:
        made = [(await remember(client, f"memory {i}"))["id"] for i in range(5)]
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = (await client.get(API, params=params)).json()
            seen += [m["id"] for m in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == made[::-1]

    async def test_filters(self, client: httpx.AsyncClient) -> None:
        a = await remember(client, "likes tea", user_id="u1", memory_type="preference")
        b = await remember(client, "lives in Oslo", user_id="u1", memory_type="fact")
        await remember(client, "likes coffee", user_id="u2", memory_type="preference")

        async def ids(**params: Any) -> list[str]:
            response = await client.get(API, params=params)
            assert response.status_code == 200, response.text
            return [m["id"] for m in response.json()["items"]]

        assert await ids(user_id="u1") == [b["id"], a["id"]]
        assert await ids(user_id="u1", memory_type="preference") == [a["id"]]
        created = datetime.fromisoformat(b["created_at"])
        assert await ids(user_id="u1", created_after=created.isoformat()) == [b["id"]]
        assert await ids(user_id="u1", created_before=created.isoformat()) == [a["id"]]
        assert await ids(agent_id=str(uuid.uuid4())) == []

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"agent_id": "nope"}, "agent_id"),
            ({"created_after": "2024-01-01T00:00:00"}, "created_after"),
            ({"created_before": "yesterday"}, "created_before"),
            ({"user_id": "a\x00"}, "user_id"),
            ({"limit": 0}, "limit"),
            ({"limit": 501}, "limit"),
            ({"cursor": "garbage"}, "cursor"),
            ({"reply_to": "1"}, "reply_to"),
        ],
    )
    async def test_bad_filters_are_a_422_naming_them(
        self, client: httpx.AsyncClient, params: dict[str, Any], field: str
    ) -> None:
        assert error_of(await client.get(API, params=params), 422)["field"] == field


class TestSearch:
    async def test_a_text_search_ranks_by_words_and_shows_each_part(
        self, client: httpx.AsyncClient
    ) -> None:
        alice = await remember(client, "The user's daughter is called Alice", importance=0.5)
        await remember(client, "The user bought coffee for 300 roubles", importance=0.5)
        await remember(client, "Paris is the capital of France", importance=0.5)
        hits = await search(client, "what is my daughter called")
        assert hits[0]["memory"]["id"] == alice["id"]
        best = hits[0]
        assert set(best) == {
            "memory",
            "score",
            "relevance",
            "similarity",
            "keyword",
            "importance",
            "recency",
        }
        assert 0 < best["score"] <= 1
        assert best["keyword"] > 0
        assert best["similarity"] > 0
        assert best["importance"] == 0.5
        assert best["recency"] == pytest.approx(1.0, abs=1e-3)
        assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)

    async def test_importance_breaks_a_tie_in_relevance(self, client: httpx.AsyncClient) -> None:
        low = await remember(client, "the password hint is blue", importance=0.1)
        high = await remember(client, "the password hint is blue", importance=0.9)
        hits = await search(client, "password hint")
        assert [h["memory"]["id"] for h in hits] == [high["id"], low["id"]]

    async def test_filters_k_and_min_score(self, client: httpx.AsyncClient) -> None:
        for i in range(4):
            await remember(client, f"tea note {i}", user_id="u1", memory_type="note")
        other = await remember(client, "tea note", user_id="u2", memory_type="note")
        assert len(await search(client, "tea", k=2)) == 2
        hits = await search(client, "tea", user_id="u2")
        assert [h["memory"]["id"] for h in hits] == [other["id"]]
        assert await search(client, "tea", memory_type="fact") == []
        assert await search(client, "tea", min_score=1) == []
        scores = [h["score"] for h in await search(client, "tea", min_score=0.3)]
        assert scores
        assert all(s >= 0.3 for s in scores)
        future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        assert await search(client, "tea", created_after=future) == []

    async def test_a_search_counts_an_access_to_each_memory_it_returns(
        self, client: httpx.AsyncClient
    ) -> None:
        found = await remember(client, "the cat is called Tom")
        missed = await remember(client, "Paris is the capital of France")
        (hit,) = await search(client, "cat Tom", k=1)
        stored = (await client.get(f"{API}/{found['id']}")).json()
        assert stored["access_count"] == 1
        # the hit shows the access the search counted
        assert hit["memory"]["access_count"] == 1
        assert hit["memory"]["last_accessed_at"] == stored["last_accessed_at"]
        assert (await client.get(f"{API}/{missed['id']}")).json()["access_count"] == 0
        await search(client, "cat Tom", k=1, count_access="false")
        again = (await client.get(f"{API}/{found['id']}")).json()
        assert again["access_count"] == 1
        assert again["last_accessed_at"] is not None
        response = await client.post(f"{API}/search", json={"q": "cat Tom", "k": 1})
        assert response.status_code == 200
        assert (await client.get(f"{API}/{found['id']}")).json()["access_count"] == 2

    async def test_a_text_search_over_only_another_models_vectors_matches_by_words(
        self, client: httpx.AsyncClient
    ) -> None:
        tea = await remember(
            client, "likes tea", user_id="u", embedding=[0.1, 0.2, 0.3], embedding_model="my-model"
        )
        (hit,) = await search(client, "tea", user_id="u")
        assert (hit["memory"]["id"], hit["keyword"], hit["similarity"]) == (tea["id"], 1.0, None)
        assert await search(client, "coffee", user_id="u") == []
        response = await client.post(f"{API}/search", json={"q": "tea"})
        assert [h["memory"]["id"] for h in response.json()["items"]] == [tea["id"]]

    async def test_a_search_by_embedding_with_its_model(self, client: httpx.AsyncClient) -> None:
        near = await remember(client, "north", embedding=[1.0, 0.1, 0.0], embedding_model="m3")
        await remember(client, "east", embedding=[0.0, 1.0, 0.0], embedding_model="m3")
        await remember(client, "up", embedding=[0.0, 0.0, 1.0], embedding_model="m3")
        response = await client.post(
            f"{API}/search", json={"embedding": [1.0, 0.0, 0.0], "embedding_model": "m3", "k": 2}
        )
        assert response.status_code == 200, response.text
        hits = response.json()["items"]
        assert hits[0]["memory"]["id"] == near["id"]
        assert len(hits) == 2
        assert hits[0]["similarity"] == pytest.approx(1 / (1.01**0.5), abs=1e-5)
        assert hits[0]["keyword"] is None  # a vector alone has no words

    async def test_a_search_by_embedding_of_the_servers_embedder(
        self, client: httpx.AsyncClient
    ) -> None:
        created = await client.post(
            f"{API}?include_embedding=true", json={"content": "violet umbrella"}
        )
        vector = created.json()["embedding"]
        response = await client.post(f"{API}/search", json={"embedding": vector})
        hits = response.json()["items"]
        assert hits[0]["similarity"] == pytest.approx(1.0, abs=1e-5)

    async def test_an_embedding_of_an_unknown_model_or_length_is_a_422(
        self, client: httpx.AsyncClient
    ) -> None:
        await remember(client, "something")
        for body in (
            {"embedding": [1.0, 0.0], "embedding_model": "never-seen"},
            {"embedding": [1.0, 0.0]},
            {"embedding": unit(3), "embedding_model": HASH},
        ):
            response = await client.post(f"{API}/search", json=body)
            assert error_of(response, 422)["field"] == "embedding", body

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({}, "q"),
            ({"q": ""}, "q"),
            ({"q": "x", "k": 0}, "k"),
            ({"q": "x", "k": 10**30}, "k"),
            ({"q": "x", "k": "many"}, "k"),
            ({"q": "x", "min_score": 2}, "min_score"),
            ({"q": "x", "min_score": "nan"}, "min_score"),
            ({"q": "x", "min_score": -0.1}, "min_score"),
            ({"q": "x", "created_after": "2024-01-01T00:00:00"}, "created_after"),
            ({"q": "x", "agent_id": "nope"}, "agent_id"),
            ({"q": "x", "memory_type": "t" * 51}, "memory_type"),
            ({"q": "a\x00"}, "q"),
            ({"q": "x" * 10_001}, "q"),
            ({"q": "x", "kk": 3}, "kk"),
        ],
    )
    async def test_bad_search_params_are_a_422_naming_them(
        self, client: httpx.AsyncClient, params: dict[str, Any], field: str
    ) -> None:
        response = await client.get(f"{API}/search", params=params)
        assert error_of(response, 422)["field"] == field

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({}, "q"),
            ({"k": 3}, "q"),
            ({"q": "x", "k": 0}, "k"),
            ({"q": "x", "k": 10**30}, "k"),
            ({"q": "x", "k": "3"}, "k"),
            ({"q": "x", "k": True}, "k"),
            ({"q": "x", "min_score": 2}, "min_score"),
            ({"q": "a\ud800"}, "q"),
            ({"q": "x", "created_before": "2024-01-01T00:00:00"}, "created_before"),
            ({"embedding": [float("nan")]}, "embedding"),
            ({"embedding": "1,2"}, "embedding"),
            ({"q": "x", "user": "u1"}, "user"),
        ],
    )
    async def test_bad_search_bodies_are_a_422_naming_the_field(
        self, client: httpx.AsyncClient, body: dict[str, Any], field: str
    ) -> None:
        raw = json.dumps(body).encode()  # NaN as JSON's NaN, a lone surrogate as its escape
        response = await client.post(
            f"{API}/search", content=raw, headers={"content-type": "application/json"}
        )
        assert error_of(response, 422)["field"] == field


class TestChange:
    async def test_new_content_is_embedded_again_and_found_by_its_words(
        self, client: httpx.AsyncClient
    ) -> None:
        memory = await remember(client, "cats purr on the sofa")
        before = (await client.get(f"{API}/{memory['id']}?include_embedding=true")).json()
        response = await client.patch(f"{API}/{memory['id']}", json={"content": "zebra stripes"})
        assert response.status_code == 200, response.text
        changed = response.json()
        assert changed["content"] == "zebra stripes"
        assert changed["importance"] == memory["importance"]
        after = (await client.get(f"{API}/{memory['id']}?include_embedding=true")).json()
        assert after["embedding"] != before["embedding"]
        hits = await search(client, "zebra")
        assert [h["memory"]["id"] for h in hits] == [memory["id"]]
        assert hits[0]["keyword"] == 1.0
        assert hits[0]["similarity"] > 0.3
        (old,) = await search(client, "cats sofa")  # near by vector only: its words are gone
        assert old["keyword"] == 0.0
        assert old["similarity"] < hits[0]["similarity"]

    async def test_importance_and_type_change_alone(self, client: httpx.AsyncClient) -> None:
        memory = await remember(client, "likes tea")
        response = await client.patch(
            f"{API}/{memory['id']}", json={"importance": 0.9, "memory_type": "preference"}
        )
        assert response.status_code == 200, response.text
        assert (response.json()["importance"], response.json()["memory_type"]) == (
            0.9,
            "preference",
        )
        assert response.json()["content"] == "likes tea"

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"importance": -1}, "importance"),
            ({"importance": "very"}, "importance"),
            ({"content": ""}, "content"),
            ({"content": " \u200b "}, "content"),
            ({"content": "\ud800"}, "content"),
            ({"embedding": [1.0, 2.0]}, "embedding"),
            ({"embedding_model": "x"}, "embedding_model"),
            ({"id": str(uuid.uuid4())}, "id"),
        ],
    )
    async def test_bad_changes_are_a_422_and_change_nothing(
        self, client: httpx.AsyncClient, body: dict[str, Any], field: str
    ) -> None:
        memory = await remember(client, "stays")
        raw = json.dumps(body).encode()
        response = await client.patch(
            f"{API}/{memory['id']}", content=raw, headers={"content-type": "application/json"}
        )
        assert error_of(response, 422)["field"] == field
        assert (await client.get(f"{API}/{memory['id']}")).json() == memory

    async def test_unknown_and_malformed_ids(self, client: httpx.AsyncClient) -> None:
        missing = f"{API}/{uuid.uuid4()}"
        assert error_of(await client.get(missing), 404)["field"] == "memory_id"
        assert error_of(await client.patch(missing, json={"importance": 1}), 404)["code"] == (
            "not_found"
        )
        assert error_of(await client.delete(missing), 404)["field"] == "memory_id"
        # a path that is not UTF-8 once decoded is refused before any route reads it
        for bad, field in (("nope", "memory_id"), ("%ED%A0%80", "path"), ("1", "memory_id")):
            assert error_of(await client.get(f"{API}/{bad}"), 422)["field"] == field
            assert error_of(await client.delete(f"{API}/{bad}"), 422)["field"] == field

    async def test_forget(self, client: httpx.AsyncClient) -> None:
        memory = await remember(client, "temporary")
        response = await client.delete(f"{API}/{memory['id']}")
        assert response.status_code == 204
        assert error_of(await client.get(f"{API}/{memory['id']}"), 404)
        assert await search(client, "temporary") == []
        assert (await client.get("/api/v1/stats")).json()["memories"] == 0


class TestModels:
    async def test_the_stores_models_with_counts_and_the_servers_embedder(
        self, client: httpx.AsyncClient
    ) -> None:
        await remember(client, "one")
        await remember(client, "two")
        await remember(client, "three", embedding=[1.0, 0.0], embedding_model="tiny-2")
        response = await client.get(f"{API}/models")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["embedder"]["name"] == HASH
        assert body["embedder"]["dimension"] == 384
        assert "lexical" in body["embedder"]["description"]
        assert body["embedder"]["problem"] is None
        counts = {m["name"]: (m["dimension"], m["memories"]) for m in body["models"]}
        assert counts == {HASH: (384, 2), "tiny-2": (2, 1)}
        assert body["not_embedded_by_embedder"] == 1
        assert (await client.get("/api/v1/stats")).json()["memories"] == 3


class TestEmbedderUnavailable:
    async def test_an_unreachable_embedding_endpoint_is_a_503_and_the_rest_still_answers(
        self, settings: Settings
    ) -> None:
        down = settings.model_copy(
            update={
                "embedder": "openai",
                "embedding_base_url": "http://127.0.0.1:9/v1",  # the discard port: refused
                "provider_timeout": 5.0,
            }
        )
        app = create_app(down)
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://test") as client,
        ):
            for response in (
                await client.post(API, json={"content": "x"}),
                await client.get(f"{API}/search", params={"q": "x"}),
            ):
                error = error_of(response, 503)
                assert error["code"] == "embedder_unavailable"
                assert "127.0.0.1:9" in error["message"]
                assert response.headers["retry-after"]
            stored = await client.post(
                API, json={"content": "x", "embedding": [1.0, 0.0], "embedding_model": "m2"}
            )
            assert stored.status_code == 201, stored.text  # a given vector needs no embedder
            models = (await client.get(f"{API}/models")).json()
            assert models["embedder"]["dimension"] is None
            assert "127.0.0.1:9" in models["embedder"]["problem"]
            assert len((await client.get(API)).json()["items"]) == 1
