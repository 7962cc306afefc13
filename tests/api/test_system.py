"""Health, metrics, totals and the error shape for what matches no route."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from unittest.mock import ANY

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from agentkeep import Settings, __version__
from agentkeep.api import create_app
from api.shapes import error_of

pytestmark = pytest.mark.anyio


DETAILS = {"version", "database"}


def keyed(settings: Settings, key: str) -> Settings:
    return settings.model_copy(update={"api_keys": [SecretStr(key)]})


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        yield app, client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class TestHealth:
    async def test_head_answers_as_get_does_for_load_balancers(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.head("/health")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert (await client.get("/health")).status_code == 200

    async def test_without_keys_reports_database_version_and_latency(
        self, client: httpx.AsyncClient, backend: str
    ) -> None:
        response = await client.get("/health")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ok"
        assert body["latency_ms"] >= 0
        assert body["version"] == __version__
        database = body["database"]
        assert database["status"] == "success"
        assert database["latency_ms"] >= 0
        expected = "PostgreSQL" if backend == "postgresql" else "SQLite"
        assert expected in database["version"]
        assert "password" not in str(database)

    async def test_with_keys_tells_others_only_status_and_latency(self, settings: Settings) -> None:
        async with serving(keyed(settings, "k-one")) as (_, client):
            for headers in ({}, bearer("k-two"), {"Authorization": "Basic azpvbmU="}):
                response = await client.get("/health", headers=headers)
                assert response.status_code == 200
                assert set(response.json()) == {"status", "latency_ms"}, headers
                assert __version__ not in response.text
            detailed = (await client.get("/health", headers=bearer("k-one"))).json()
            assert set(detailed) >= DETAILS
            assert detailed["database"]["status"] == "success"

    async def test_a_stored_key_sees_the_details(self, settings: Settings) -> None:
        async with serving(settings) as (app, client):
            _, key = await app.state.db.api_keys.create("ops")
            assert set((await client.get("/health")).json()) == {"status", "latency_ms"}
            assert set((await client.get("/health", headers=bearer(key))).json()) >= DETAILS

    async def test_a_server_insisting_on_keys_shows_no_details_while_none_exists(
        self, settings: Settings
    ) -> None:
        insisting = settings.model_copy(update={"require_api_keys": True})
        async with serving(insisting) as (_, client):
            response = await client.get("/health", headers=bearer("anything"))
            assert set(response.json()) == {"status", "latency_ms"}

    async def test_the_schema_documents_both_answers(self, client: httpx.AsyncClient) -> None:
        schema = (await client.get("/openapi.json")).json()
        health = schema["components"]["schemas"]["Health"]
        assert set(health["required"]) == {"status", "latency_ms"}
        assert set(health["properties"]) >= DETAILS
        assert "API key" in schema["paths"]["/health"]["get"]["description"]

    async def test_is_503_when_the_database_cannot_be_reached(self) -> None:
        unreachable = Settings(
            database_url=f"postgresql+psycopg://u:secret@/db?host=/nonexistent/{uuid.uuid4().hex[:8]}",
            auto_migrate=False,
            pool_timeout=2,
        )
        async with serving(unreachable) as (_, client):
            response = await client.get("/health")
            assert response.status_code == 503
            # whether keys are stored cannot be read: the details stay hidden
            assert response.json() == {"status": "unavailable", "latency_ms": ANY}
            assert "secret" not in response.text
            error = error_of(await client.get("/api/v1/agents"), 503)
            assert error["code"] == "unavailable"
            assert "secret" not in error["message"]
        async with serving(keyed(unreachable, "k-one")) as (_, client):
            response = await client.get("/health", headers=bearer("k-one"))
            assert response.status_code == 503
            body = response.json()
            assert body["database"]["status"] == "error"
            assert "secret" not in response.text


class TestStats:
    async def test_counts_and_usage(self, client: httpx.AsyncClient) -> None:
        empty = (await client.get("/api/v1/stats")).json()
        assert empty["conversations"] == empty["messages"] == empty["agents"] == 0
        agent = (await client.post("/api/v1/agents", json={"name": "busy"})).json()
        await client.post("/api/v1/agents", json={"name": "idle"})
        tool = (await client.post("/api/v1/tools", json={"name": "t"})).json()
        started = await client.post(
            "/api/v1/conversations/start",
            json={"agent_id": agent["id"], "message": {"role": "user", "content": "hi"}},
        )
        cid = started.json()["conversation"]["id"]
        await client.post(
            f"/api/v1/conversations/{cid}/message",
            json={"role": "assistant", "content": "hello", "input_tokens": 5, "output_tokens": 3},
        )
        await client.post("/api/v1/conversations/start", json={"status": "completed"})
        stats = (await client.get("/api/v1/stats")).json()
        assert (stats["agents"], stats["tools"], stats["conversations"]) == (2, 1, 2)
        assert stats["conversations_by_status"] == {"active": 1, "completed": 1}
        assert (stats["messages"], stats["input_tokens"], stats["output_tokens"]) == (2, 5, 3)
        assert stats["busiest_agents"] == [{"id": agent["id"], "name": "busy", "count": 2}]
        assert stats["most_used_tools"] == []
        assert tool["usage_count"] == 0


class TestMetrics:
    async def test_counts_requests_by_route_template(self, client: httpx.AsyncClient) -> None:
        missing = uuid.uuid4()
        await client.get(f"/api/v1/conversations/{missing}")
        await client.get("/api/v1/agents")
        await client.get("/no/such/route")
        text = (await client.get("/metrics")).text
        assert (
            'agentkeep_http_requests_total{method="GET",'
            'route="/api/v1/conversations/{conversation_id}",status="404"} 1.0'
        ) in text
        assert 'route="/api/v1/agents",status="200"} 1.0' in text
        assert 'route="unmatched",status="404"} 1.0' in text
        assert str(missing) not in text
        assert "agentkeep_http_request_duration_seconds_bucket" in text
        assert "agentkeep_db_connections_in_use" in text
        assert f'version="{__version__}"' in text


class TestErrorShape:
    async def test_unknown_route_and_wrong_method(self, client: httpx.AsyncClient) -> None:
        assert error_of(await client.get("/api/v1/nothing"), 404)["code"] == "not_found"
        error = error_of(await client.delete("/api/v1/agents"), 405)
        assert error["code"] == "method_not_allowed"

    async def test_collections_answer_with_a_trailing_slash_too(
        self, client: httpx.AsyncClient
    ) -> None:
        created = await client.post("/api/v1/agents/", json={"name": "slash", "provider": "echo"})
        assert created.status_code == 201, created.text
        agent_id = created.json()["id"]
        listed = await client.get("/api/v1/agents/")
        assert listed.status_code == 200
        assert [a["id"] for a in listed.json()["items"]] == [agent_id]
        assert (await client.get(f"/api/v1/agents/{agent_id}/")).json()["name"] == "slash"
        started = await client.post(
            "/api/v1/conversations/start/", json={"agent_id": agent_id, "user_id": "u"}
        )
        assert started.status_code == 201, started.text
        assert (await client.get("/api/v1/conversations/")).status_code == 200
        # the metrics name the route, not the spelling
        metrics = (await client.get("/metrics")).text
        assert 'route="/api/v1/agents/"' not in metrics

    async def test_openapi_documents_every_route_with_the_error_shape(
        self, client: httpx.AsyncClient
    ) -> None:
        schema = (await client.get("/openapi.json")).json()
        paths = schema["paths"]
        assert "/api/v1/conversations/{conversation_id}/messages" in paths
        assert "/api/v1/agents/{agent_id}/tools/{tool_id}" in paths
        assert {"get", "put", "delete"} <= set(
            paths["/api/v1/conversations/{conversation_id}/state/{key}"]
        )
        assert "ErrorResponse" in schema["components"]["schemas"]
        start = paths["/api/v1/conversations/start"]["post"]
        assert start["requestBody"]["content"]["application/json"]["examples"]
        assert (await client.get("/docs")).status_code == 200

    async def test_no_connection_is_left_checked_out(
        self, client: httpx.AsyncClient, backend: str
    ) -> None:
        await client.get(f"/api/v1/conversations/{uuid.uuid4()}")
        await client.post("/api/v1/conversations/start", json={"agent_id": str(uuid.uuid4())})
        await client.post("/api/v1/agents", json={"name": ""})
        started = await client.post("/api/v1/conversations/start", json={"title": "kept"})
        assert started.status_code == 201  # a write that succeeds gives its connection back too
        text = (await client.get("/metrics")).text
        assert "agentkeep_db_connections_in_use 0.0" in text
