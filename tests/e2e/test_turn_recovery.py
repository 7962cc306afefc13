"""End to end: a server killed mid-turn leaves its reply ``streaming``; the next one to start
marks it ``error``, while its own slow turns, touched every heartbeat, are left to finish.

``agentkeep serve`` runs as a real process on a SQLite file with a short heartbeat; the echo model
is slowed down (``token_delay_ms``) so the turn is still streaming when the process is killed.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_serve import Server, agentkeep_env, assert_stops_cleanly, serving

from agentkeep import Settings, connect_sync

pytestmark = pytest.mark.slow

HEARTBEAT = 0.3
SLOW = {"token_delay_ms": 200}


def first_events(client: httpx.Client, body: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """The data of the first ``count`` events of a streamed turn, then hang up."""
    seen: list[dict[str, Any]] = []
    with client.stream("POST", "/api/v1/streaming/start", json=body) as response:
        for line in response.iter_lines():
            if line.startswith("data:"):
                seen.append(json.loads(line.removeprefix("data:")))
                if len(seen) == count:
                    break
    return seen


def reply_status(server: Server, conversation_id: str, reply_id: str) -> dict[str, Any]:
    with server.client() as client:
        page = client.get(f"/api/v1/conversations/{conversation_id}/messages").json()
    reply: dict[str, Any] = next(m for m in page["items"] if m["id"] == reply_id)
    return reply


def test_a_reply_left_streaming_by_a_killed_server_is_marked_error(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = agentkeep_env(tmp_path, data_dir=str(data), turn_heartbeat_seconds=str(HEARTBEAT))
    body = {"content": " ".join(f"w{i}" for i in range(40)), "user_id": "u1"}
    with serving(tmp_path, env) as server, server.client() as client:
        agent = client.post(
            "/api/v1/agents", json={"name": "slow", "provider": "echo", "model_settings": SLOW}
        ).json()
        started = first_events(client, {**body, "agent_id": agent["id"]}, count=3)[0]
        server.process.send_signal(signal.SIGKILL)  # mid-turn: nothing can finalise the reply
        server.process.wait()
    database = Settings(database_url=f"sqlite:///{data / 'agentkeep.db'}", auto_migrate=False)
    with connect_sync(database, upgrade=False) as db:
        assert db.messages.get(started["message_id"]).status == "streaming"

    with serving(tmp_path, env) as server:
        deadline = time.monotonic() + 10
        reply = reply_status(server, started["conversation_id"], started["message_id"])
        while reply["status"] == "streaming" and time.monotonic() < deadline:
            time.sleep(0.1)
            reply = reply_status(server, started["conversation_id"], started["message_id"])
        assert reply["status"] == "error"
        assert reply["metadata"]["error"] == "the server stopped during the turn"
        assert reply["content"] == ""  # what the dead process had not stored is gone

        # a turn of the live server lasting many heartbeats is touched, not swept
        with server.client() as client:
            response = client.post(
                "/api/v1/streaming/start",
                json={"agent_id": agent["id"], "content": "one two three four five six seven"},
                timeout=30,
            )
        frames = [line for line in response.text.splitlines() if line.startswith("event:")]
        assert frames[-1] == "event: message_end"
        assert '"status": "complete"' in response.text
        assert_stops_cleanly(server, signal.SIGTERM)
