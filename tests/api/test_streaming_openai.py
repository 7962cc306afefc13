"""Chat turns with an ``openai`` agent, end to end: the API streams what a real
OpenAI-compatible server (on loopback, scripted) sends through the real SDK, and stores it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from agentkeep import Settings
from agentkeep.api import create_app
from api.shapes import read_sse
from providers.fake_openai import (
    FakeOpenAI,
    Reply,
    chunk,
    openai_error,
    serve,
    text_chunks,
    tool_delta,
    usage_chunk,
)

pytestmark = pytest.mark.anyio

API = "/api/v1"


@pytest.fixture(scope="module")
def model_server() -> Iterator[FakeOpenAI]:
    with serve(FakeOpenAI()) as fake:
        yield fake


@pytest.fixture
async def openai_client(
    settings: Settings, model_server: FakeOpenAI
) -> AsyncIterator[httpx.AsyncClient]:
    model_server.reset()
    configured = settings.model_copy(
        update={"openai_base_url": model_server.base_url, "provider_timeout": 1.0}
    )
    app = create_app(configured)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c,
    ):
        yield c


async def turn(client: httpx.AsyncClient, content: str) -> tuple[list[tuple[str, Any]], str]:
    agent = await client.post(
        f"{API}/agents",
        json={"name": "gpt", "model": "fake-model", "model_settings": {"temperature": 0.3}},
    )
    assert agent.json()["provider"] is None  # settings choose openai: a base URL is configured
    tool = await client.post(f"{API}/tools", json={"name": "current_time"})
    await client.post(f"{API}/agents/{agent.json()['id']}/tools/{tool.json()['id']}")
    events = await read_sse(
        await client.post(
            f"{API}/streaming/start", json={"agent_id": agent.json()["id"], "content": content}
        )
    )
    return events, events[0][1]["conversation_id"]


async def test_tokens_tool_calls_and_usage_stream_and_are_stored(
    openai_client: httpx.AsyncClient, model_server: FakeOpenAI
) -> None:
    model_server.script(
        Reply(
            chunks=[
                chunk({"role": "assistant", "content": None}),
                tool_delta(0, call_id="call_a", name="current_time", arguments='{"time'),
                tool_delta(0, arguments='zone": "UTC"}'),
                chunk({}, finish_reason="tool_calls"),
                usage_chunk(40, 9),
            ]
        ),
        Reply(chunks=[*text_chunks("It is ", "noon."), usage_chunk(60, 4)]),
    )
    events, cid = await turn(openai_client, "what time is it?")
    kinds = [event for event, _ in events]
    assert kinds == ["message_start", "tool_call", "tool_result", "token", "token", "message_end"]
    assert events[1][1]["arguments"] == {"timezone": "UTC"}
    assert events[-1][1]["input_tokens"] == 100
    assert events[-1][1]["output_tokens"] == 13

    first, second = (r.body for r in model_server.received)
    assert first["model"] == "fake-model"
    assert first["temperature"] == 0.3
    assert first["tools"][0]["function"]["name"] == "current_time"
    assert second["messages"][-1]["role"] == "tool"
    assert second["messages"][-1]["tool_call_id"] == "call_a"
    assert "iso" in json.loads(second["messages"][-1]["content"])

    stored = (await openai_client.get(f"{API}/conversations/{cid}/messages")).json()["items"]
    assert [m["role"] for m in stored] == ["user", "assistant", "tool"]
    assert stored[1]["content"] == "It is noon."
    assert stored[1]["status"] == "complete"


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        (
            Reply(status=500, error=openai_error("the GPU caught fire", "server_error")),
            "provider_error",
        ),
        (Reply(chunks=text_chunks("slow"), stall=3.0), "provider_timeout"),
        (Reply(chunks=text_chunks("a", "b", "c"), stall=3.0, stall_after=2), "provider_timeout"),
    ],
)
async def test_provider_failures_end_the_stream_with_an_error_and_a_stored_error(
    openai_client: httpx.AsyncClient, model_server: FakeOpenAI, reply: Reply, code: str
) -> None:
    model_server.script(reply)
    events, cid = await turn(openai_client, "hello")
    assert events[0][0] == "message_start"
    assert events[-1][0] == "error"
    assert events[-1][1]["code"] == code
    stored = (await openai_client.get(f"{API}/conversations/{cid}/messages")).json()["items"]
    assert stored[-1]["id"] == events[-1][1]["message_id"]
    assert stored[-1]["status"] == "error"
    said = "".join(data["text"] for event, data in events if event == "token")
    assert stored[-1]["content"] == said  # what arrived before the failure is kept
