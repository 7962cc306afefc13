"""Every turn ends stored as complete, cancelled or error, whoever stops listening and when.

Served under uvicorn on a real socket: clients that hang up right after ``message_start`` (many
at once) leave no reply ``streaming``, neither while the server runs nor after it shuts down.
"""

from __future__ import annotations

import anyio
import httpx
import pytest

from agentkeep import Settings, connect_sync
from agentkeep.api import create_app
from api.shapes import sse_events
from servers import serve_app

pytestmark = pytest.mark.anyio

API = "/api/v1"
TURNS = 50


async def _start_and_hang_up(client: httpx.AsyncClient, agent_id: str, n: int) -> str:
    body = {"agent_id": agent_id, "content": f"turn {n} " + "word " * 20, "user_id": "u1"}
    async with client.stream("POST", f"{API}/streaming/start", json=body) as response:
        async for event, data in sse_events(response):
            assert event == "message_start", data
            message_id: str = data["message_id"]
            return message_id  # leaving the block closes the connection
    raise AssertionError("the stream ended before message_start")


async def _agent(client: httpx.AsyncClient, delay_ms: int) -> str:
    body = {
        "name": f"echo-{delay_ms}",
        "provider": "echo",
        "model_settings": {"token_delay_ms": delay_ms},
    }
    agent_id: str = (await client.post(f"{API}/agents", json=body)).json()["id"]
    return agent_id


async def _statuses(client: httpx.AsyncClient) -> dict[str, str]:
    found: dict[str, str] = {}
    conversations = await client.get(f"{API}/conversations", params={"limit": 500})
    for conversation in conversations.json()["items"]:
        page = await client.get(f"{API}/conversations/{conversation['id']}/messages")
        for message in page.json()["items"]:
            if message["role"] == "assistant":
                found[message["id"]] = message["status"]
    return found


class TestClientsThatLeave:
    async def test_many_clients_leaving_after_message_start_leave_no_reply_streaming(
        self, settings: Settings
    ) -> None:
        app = create_app(settings)
        limits = httpx.Limits(max_connections=TURNS + 10)
        with serve_app(app) as base:
            async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
                agents = [await _agent(client, delay) for delay in (0, 20)]  # fast and slow
                ids: list[str] = []

                async def one(n: int) -> None:
                    ids.append(await _start_and_hang_up(client, agents[n % 2], n))

                async with anyio.create_task_group() as group:
                    for n in range(TURNS):
                        group.start_soon(one, n)
                statuses: dict[str, str] = {}
                with anyio.move_on_after(15):
                    while len(statuses) < TURNS or "streaming" in statuses.values():
                        await anyio.sleep(0.2)
                        statuses = await _statuses(client)
            assert sorted(statuses) == sorted(ids)
            assert "streaming" not in statuses.values(), statuses
        if settings.url is not None:  # a store that outlives the server: read it again
            with connect_sync(settings, upgrade=False) as db:
                for message_id in ids:
                    assert db.messages.get(message_id).status != "streaming"
