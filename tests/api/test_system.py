"""Health, metrics, totals and the error shape for what matches no route."""

from __future__ import annotations

import uuid

import httpx
import pytest

from agentkeep import Settings, __version__
from agentkeep.api import create_app
from api.shapes import error_of

pytestmark = pytest.mark.anyio


class TestHealth:
    async def test_reports_database_version_and_latency(
        self, client: httpx.AsyncClient, backend: str
    ) -> None:
        response = await client.get("/health")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ok"
        assert body["version"] == __version__
        database = body["database"]
        assert database["status"] == "success"
        assert database["latency_ms"] >= 0
        expected = "PostgreSQL" if backend == "postgresql" else "SQLite"
        assert expected in database["version"]
        assert "password" not in str(database)

    async def test_is_503_when_the_database_cannot_be_reached(self) -> None:
        unreachable = Settings(
            database_url=f"postgresql+psycopg://u:secret@/db?host=/nonexistent/{uuid.uuid4().hex[:8]}",
            auto_migrate=False,
            pool_timeout=2,
        )
        app = create_app(unreachable)
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://test") as client,
        ):
            response = await client.get("/health")
            assert response.status_code == 503
            body = response.json()
            assert body["status"] == "unavailable"
            assert body["database"]["status"] == "error"
            assert "secret" not in response.text
            error = error_of(await client.get("/api/v1/agents"), 503)
            assert error["code"] == "unavailable"
            assert "secret" not in error["message"]


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
        text = (await client.get("/metrics")).text
        assert "agentkeep_db_connections_in_use 0.0" in text
