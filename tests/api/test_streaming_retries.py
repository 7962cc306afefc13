"""A send retried with the same ``client_id`` gets the first turn's reply again, on every backend.

Over ``/streaming/send``, ``/streaming/start`` and the WebSocket: the same ids, the same text, the
same end; no second user message, no second reply, and the model is called once (counted by
wrapping the echo provider).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest
from starlette.testclient import TestClient

from agentkeep import Settings
from agentkeep.api import create_app
from agentkeep.providers.base import CompletionRequest, ProviderEvent
from agentkeep.providers.echo import EchoProvider
from api.shapes import read_sse

pytestmark = pytest.mark.anyio

API = "/api/v1"
Events = list[tuple[str, dict[str, Any]]]


@pytest.fixture
def model_calls(monkeypatch: pytest.MonkeyPatch) -> list[CompletionRequest]:
    """Every call the echo model gets."""
    calls: list[CompletionRequest] = []
    stream = EchoProvider.stream

    def counted(self: EchoProvider, request: CompletionRequest) -> AsyncIterator[ProviderEvent]:
        calls.append(request)
        return stream(self, request)

    monkeypatch.setattr(EchoProvider, "stream", counted)
    return calls


async def make_agent(client: httpx.AsyncClient, **settings: Any) -> str:
    body = {"name": "retried", "provider": "echo", "model_settings": settings}
    agent_id: str = (await client.post(f"{API}/agents", json=body)).json()["id"]
    return agent_id


def text_of(events: Events) -> str:
    return "".join(data["text"] for event, data in events if event == "token")


async def messages(client: httpx.AsyncClient, cid: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await client.get(f"{API}/conversations/{cid}/messages")).json()[
        "items"
    ]
    return items


class TestRetriedSends:
    async def test_a_retried_send_re_streams_the_first_reply(
        self, client: httpx.AsyncClient, model_calls: list[CompletionRequest]
    ) -> None:
        agent_id = await make_agent(client, thinking=True)
        started = await read_sse(
            await client.post(f"{API}/streaming/start", json={"agent_id": agent_id, "content": "a"})
        )
        cid = started[0][1]["conversation_id"]
        send = {"conversation_id": cid, "content": "bought coffee", "client_id": "m-2"}
        first = await read_sse(await client.post(f"{API}/streaming/send", json=send))
        calls = len(model_calls)
        again = await read_sse(await client.post(f"{API}/streaming/send", json=send))
        assert len(model_calls) == calls  # the model was not asked again
        assert again[0] == first[0]  # message_start: the same ids
        assert [e for e, _ in again] == ["message_start", "thinking", "token", "message_end"]
        assert text_of(again) == text_of(first)
        assert again[1][1]["text"] == "".join(d["text"] for e, d in first if e == "thinking")
        assert again[-1][1]["status"] == "complete"
        assert again[-1][1]["output_tokens"] == first[-1][1]["output_tokens"]
        assert [m["role"] for m in await messages(client, cid)] == ["user", "assistant"] * 2

    async def test_retries_at_once_wait_for_the_first_and_share_its_reply(
        self, client: httpx.AsyncClient, model_calls: list[CompletionRequest]
    ) -> None:
        agent_id = await make_agent(client, token_delay_ms=5)
        body = {"agent_id": agent_id, "content": "first words", "client_id": "c-1"}
        results: list[Events] = []

        async def start() -> None:
            results.append(await read_sse(await client.post(f"{API}/streaming/start", json=body)))

        async with anyio.create_task_group() as group:
            for _ in range(3):
                group.start_soon(start)
        assert len(model_calls) == 1
        assert len({events[0][1]["message_id"] for events in results}) == 1
        assert all(events[-1][0] == "message_end" for events in results)
        assert len({text_of(events) for events in results}) == 1
        cid = results[0][0][1]["conversation_id"]
        assert (await client.get(f"{API}/stats")).json()["conversations"] == 1
        assert [m["role"] for m in await messages(client, cid)] == ["user", "assistant"]

    async def test_a_retried_failed_turn_ends_with_the_same_error(
        self, client: httpx.AsyncClient, model_calls: list[CompletionRequest]
    ) -> None:
        agent_id = await make_agent(client, fail="the model is down")
        body = {"agent_id": agent_id, "content": "hi", "client_id": "c-err"}
        first = await read_sse(await client.post(f"{API}/streaming/start", json=body))
        again = await read_sse(await client.post(f"{API}/streaming/start", json=body))
        assert len(model_calls) == 1
        assert again[0] == first[0]
        assert again[-1] == first[-1]
        assert again[-1][0] == "error"

    async def test_another_client_id_is_another_turn(
        self, client: httpx.AsyncClient, model_calls: list[CompletionRequest]
    ) -> None:
        agent_id = await make_agent(client)
        for client_id in ("x-1", "x-2"):
            body = {"agent_id": agent_id, "content": "hi", "client_id": client_id}
            await read_sse(await client.post(f"{API}/streaming/start", json=body))
        assert len(model_calls) == 2
        assert (await client.get(f"{API}/stats")).json()["conversations"] == 2


def test_a_retried_websocket_message_re_streams_the_first_reply(
    settings: Settings, model_calls: list[CompletionRequest]
) -> None:
    with TestClient(create_app(settings)) as client:
        agent = client.post(f"{API}/agents", json={"name": "ws", "provider": "echo"}).json()
        cid = client.post(
            f"{API}/conversations/start", json={"agent_id": agent["id"], "user_id": "u"}
        ).json()["conversation"]["id"]
        runs: list[Events] = []
        with client.websocket_connect(f"{API}/streaming/ws/{cid}") as socket:
            for _ in range(2):
                socket.send_json({"type": "message", "content": "hello", "client_id": "w-1"})
                frames: Events = []
                while not frames or frames[-1][0] not in ("message_end", "error"):
                    frame = socket.receive_json()
                    frames.append((frame["event"], frame["data"]))
                runs.append(frames)
        assert len(model_calls) == 1
        assert runs[1][0] == runs[0][0]
        assert text_of(runs[1]) == text_of(runs[0])
        assert runs[1][-1][1]["status"] == "complete"
        stored = client.get(f"{API}/conversations/{cid}/messages").json()["items"]
        assert [m["role"] for m in stored] == ["user", "assistant"]
