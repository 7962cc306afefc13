"""Changes made through the Python API of the serving process reach the running chat at once:
the agent cache and the conversations' agents follow the store, not the HTTP handlers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from agentkeep import AgentCreate, AgentUpdate, ConversationUpdate, ToolCreate
from api.shapes import read_sse

pytestmark = pytest.mark.anyio
API = "/api/v1"


async def _turn(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> list[str]:
    events = await read_sse(await client.post(f"{API}/streaming/{path}", json=body))
    assert events[-1][0] == "message_end", events
    return [name for name, _ in events]


async def test_an_agent_changed_through_the_python_api_is_used_by_the_next_turn(
    served: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = served
    db = app.state.db
    agent = await db.agents.create(AgentCreate(name="plain", provider="echo"))
    start = {"agent_id": str(agent.id), "content": "what time is it"}
    assert "thinking" not in await _turn(client, "start", start)
    await db.agents.update(agent.id, AgentUpdate(model_settings={"thinking": True}))
    assert "thinking" in await _turn(client, "start", start)
    tool = await db.tools.create(ToolCreate(name="current_time"))
    await db.agents.update(agent.id, AgentUpdate(model_settings={"tool_call": "current_time"}))
    await db.agents.attach_tool(agent.id, tool.id)
    assert "tool_result" in await _turn(client, "start", start)


async def test_a_conversation_moved_through_the_python_api_is_answered_by_its_new_agent(
    served: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = served
    db = app.state.db
    plain = await db.agents.create(AgentCreate(name="plain"))
    thinker = await db.agents.create(AgentCreate(name="thinker", model_settings={"thinking": True}))
    started = await read_sse(
        await client.post(
            f"{API}/streaming/start", json={"agent_id": str(plain.id), "content": "hi"}
        )
    )
    cid = started[0][1]["conversation_id"]
    assert "thinking" not in await _turn(client, "send", {"conversation_id": cid, "content": "a"})
    await db.conversations.update(cid, ConversationUpdate(agent_id=thinker.id))
    assert "thinking" in await _turn(client, "send", {"conversation_id": cid, "content": "b"})
