"""The hot routes answer exactly as FastAPI's own serialisation would, from the first router.

Appending a message and reading a page of messages return their JSON serialised once
(``api/encoding.py``) and are matched before every other route; these tests hold them to the
bytes FastAPI makes from the route's ``response_model`` and to the routes' documented shapes.
SSE frames are built directly; they must be the bytes sse-starlette would encode.
"""

from __future__ import annotations

import json
import re

import httpx
import pytest
from fastapi import FastAPI
from pydantic import TypeAdapter
from sse_starlette import ServerSentEvent
from starlette.routing import Match

from agentkeep.api.lean import LeanRoute
from agentkeep.api.routers.streaming import _frame
from agentkeep.managers.turn_types import ChatEvent
from agentkeep.models.common import Page
from agentkeep.models.conversation import Message

pytestmark = pytest.mark.anyio


async def _conversation(client: httpx.AsyncClient) -> str:
    started = await client.post("/api/v1/conversations/start", json={"user_id": "hot"})
    assert started.status_code == 201, started.text
    cid: str = started.json()["conversation"]["id"]
    return cid


class TestHotRoutes:
    async def test_an_appended_message_is_the_json_fastapi_would_send(
        self, client: httpx.AsyncClient
    ) -> None:
        cid = await _conversation(client)
        body = {"role": "user", "content": 'é \n "quoted"', "metadata": {"n": [1, 2.5, None]}}
        response = await client.post(f"/api/v1/conversations/{cid}/message", json=body)
        assert response.status_code == 201
        assert response.headers["content-type"] == "application/json"
        message = Message.model_validate_json(response.content)
        assert response.content == TypeAdapter(Message).dump_json(message, by_alias=True)
        assert (message.seq, message.content, message.metadata) == (
            1,
            body["content"],
            body["metadata"],
        )

    async def test_a_page_of_messages_is_the_json_fastapi_would_send(
        self, client: httpx.AsyncClient
    ) -> None:
        cid = await _conversation(client)
        for n in range(5):
            await client.post(
                f"/api/v1/conversations/{cid}/message", json={"role": "user", "content": f"m{n}"}
            )
        response = await client.get(f"/api/v1/conversations/{cid}/messages", params={"limit": 3})
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        page = TypeAdapter(Page[Message]).validate_json(response.content)
        assert response.content == TypeAdapter(Page[Message]).dump_json(page, by_alias=True)
        assert [m.content for m in page.items] == ["m2", "m3", "m4"]
        assert json.loads(response.content)["next_cursor"] == page.next_cursor

    async def test_errors_on_the_hot_routes_are_unchanged(self, client: httpx.AsyncClient) -> None:
        missing = "01930000-0000-7000-8000-000000000000"
        assert (await client.get(f"/api/v1/conversations/{missing}/messages")).status_code == 404
        assert (await client.get("/api/v1/conversations/not-a-uuid/messages")).status_code == 422
        unknown = await client.get(f"/api/v1/conversations/{missing}/messages?limitt=3")
        assert unknown.status_code == 422
        assert unknown.json()["error"]["field"] == "limitt"
        cid = await _conversation(client)
        bad = await client.post(f"/api/v1/conversations/{cid}/message", json={"role": "nobody"})
        assert bad.status_code == 422

    async def test_they_take_no_request_meant_for_another_route(
        self, served: tuple[FastAPI, httpx.AsyncClient]
    ) -> None:
        # they are tried before every other route: safe only while no other path matches theirs
        hot = [r for r in served[0].routes if isinstance(r, LeanRoute)]
        assert {r.path for r in hot} == {
            "/api/v1/conversations/{conversation_id}/message",
            "/api/v1/conversations/{conversation_id}/messages",
        }
        paths = served[0].openapi()["paths"]
        others = [p for p in paths if p.startswith("/api/") and p not in {r.path for r in hot}]
        assert len(others) > 40
        for path in others:
            concrete = re.sub(r"\{[^}]+\}", "x", path)
            for method in paths[path]:
                scope = {"type": "http", "path": concrete, "method": method.upper()}
                for route in hot:
                    assert route.matches(scope)[0] is Match.NONE, (method, path, route.path)


@pytest.mark.parametrize(
    "event",
    [
        ChatEvent("token", {"text": 'héllo\nworld "x"\r\n'}),
        ChatEvent("message_end", {"message_id": "0193", "status": "complete", "usage": None}),
        ChatEvent("error", {"code": "x", "message": "line one\nline two"}),
    ],
)
async def test_sse_frames_are_the_bytes_sse_starlette_encodes(event: ChatEvent) -> None:
    expected = ServerSentEvent(data=json.dumps(event.data), event=event.event).encode()
    assert _frame(event) == expected
