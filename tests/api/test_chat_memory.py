"""Recalled memories on the wire, on every backend: ``message_end`` names the memories a reply
used, over Server-Sent Events and over the WebSocket, as the stored reply's metadata does."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from agentkeep import Settings
from agentkeep.api import create_app
from api.shapes import read_sse

API = "/api/v1"
CAT = "The user's cat is called Miso and sleeps on the piano"


@pytest.mark.anyio
async def test_message_end_over_sse_names_the_memories_the_reply_used(
    served: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = served
    kept = await app.state.db.memory.remember(CAT, user_id="u1")
    agent = (await client.post(f"{API}/agents", json={"name": "e", "provider": "echo"})).json()
    started = {"agent_id": agent["id"], "user_id": "u1", "content": "what is my cat called?"}
    events = await read_sse(await client.post(f"{API}/streaming/start", json=started))
    name, end = events[-1]
    assert name == "message_end"
    assert [(m["id"], m["content"]) for m in end["memories"]] == [(str(kept.id), CAT)]
    assert isinstance(end["memories"][0]["score"], float)
    cid = events[0][1]["conversation_id"]
    stored = (await client.get(f"{API}/conversations/{cid}/messages")).json()["items"]
    assert stored[1]["metadata"]["memories"] == end["memories"]


def test_message_end_over_the_websocket_names_the_memories_the_reply_used(
    settings: Settings,
) -> None:
    app = create_app(settings)
    with TestClient(app) as client:
        kept = client.portal.call(lambda: app.state.db.memory.remember(CAT, user_id="u1"))  # type: ignore[union-attr]
        agent = client.post(f"{API}/agents", json={"name": "ws", "provider": "echo"}).json()
        started = client.post(
            f"{API}/conversations/start", json={"agent_id": agent["id"], "user_id": "u1"}
        )
        cid = started.json()["conversation"]["id"]
        with client.websocket_connect(f"{API}/streaming/ws/{cid}") as socket:
            socket.send_json({"type": "message", "content": "where does my cat sleep?"})
            frames: list[dict[str, Any]] = []
            while not frames or frames[-1]["event"] not in ("message_end", "error"):
                frames.append(socket.receive_json())
        end = frames[-1]["data"]
        assert frames[-1]["event"] == "message_end"
        assert [m["id"] for m in end["memories"]] == [str(kept.id)]
