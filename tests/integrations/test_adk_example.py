"""The ADK example runs: ADK's Runner with an echo model, sessions and memory in agentkeep."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("google.adk")

EXAMPLE = Path(__file__).parents[2] / "examples" / "adk" / "echo_agent.py"

pytestmark = pytest.mark.anyio


async def test_the_echo_agent_keeps_its_turns_and_memory_in_a_sqlite_file(
    tmp_path: Path,
) -> None:
    spec = importlib.util.spec_from_file_location("adk_echo_agent", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    lines = await module.main(str(tmp_path / "adk.db"))

    assert lines[:3] == [
        "echo: You said: I bought coffee for 300 roubles",
        "echo: You said: and a croissant",
        "stored events: 4; state: {'user:lang': 'en'}",
    ]
    assert "memory: I bought coffee for 300 roubles" in lines[3:]
    # a search returns only memories that match its query
    assert all("coffee" in line for line in lines[3:]), lines

    import agentkeep

    with agentkeep.connect_sync(str(tmp_path / "adk.db")) as db:
        sessions = [c for c in db.conversations.list(user_id="alice").items if c.chat_id]
        assert len(sessions) == 1
        assert sessions[0].message_count == 4
        assert [m.role for m in db.messages.last(sessions[0].id)] == [
            "user",
            "assistant",
            "user",
            "assistant",
        ]
