"""Per-agent history: the turns a chat stores are what ``load_history`` gives back, on every
backend. An agent declared in a project file with ``include_history`` (and the user scope) is
chatted with over SSE with the echo model; each turn (the user's message and the reply) is
stored, and the agent's history with that user reads back across conversations, oldest first."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from api.shapes import read_sse

pytestmark = pytest.mark.anyio

API = "/api/v1"
PROJECT = {
    "agents": [
        {
            "name": "bookkeeper",
            "provider": "echo",
            "include_history": True,
            "model_settings": {"history_scope": "user"},
        }
    ]
}


async def turn(client: httpx.AsyncClient, agent_id: str, user: str, content: str) -> None:
    body = {"agent_id": agent_id, "user_id": user, "content": content}
    events = await read_sse(await client.post(f"{API}/streaming/start", json=body))
    assert events[-1][0] == "message_end", events


async def test_each_turn_is_saved_and_loads_back_as_the_agents_history_with_the_user(
    served: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = served
    synced = await client.post(f"{API}/config/sync", json=PROJECT)
    assert synced.status_code == 200, synced.text
    [agent] = (await client.get(f"{API}/agents")).json()["items"]
    await turn(client, agent["id"], "ann", "bought coffee for 300")
    await turn(client, agent["id"], "bob", "not ann")
    await turn(client, agent["id"], "ann", "and a sandwich")

    history = await app.state.db.load_history("bookkeeper", "ann", limit=10)
    assert [m.role.value for m in history] == ["user", "assistant", "user", "assistant"]
    assert [m.content for m in history if m.role.value == "user"] == [
        "bought coffee for 300",
        "and a sandwich",
    ]
    assert all(m.status.value == "complete" for m in history)
    assert len({m.conversation_id for m in history}) == 2  # across the user's conversations
