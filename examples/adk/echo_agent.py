"""An ADK agent whose sessions, state and memory live in agentkeep, with no model or network.

A tiny ``BaseLlm`` echoes the user's words back, so ADK's own ``Runner`` drives a real
``LlmAgent`` turn by turn; ``AgentkeepSessionService`` stores every event as an agentkeep message
(the web UI and the HTTP API show the conversation) and ``AgentkeepMemoryService`` remembers the
session for later searches.

    python examples/adk/echo_agent.py [DATABASE_URL_OR_SQLITE_PATH]      # default: adk-example.db
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncGenerator

from google.adk.agents import LlmAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import Runner
from google.genai import types

import agentkeep
from agentkeep.integrations.adk import AgentkeepMemoryService, AgentkeepSessionService

APP = "echo_app"


class EchoLlm(BaseLlm):
    """Answers with the last thing the user said (and counts the words as tokens)."""

    model: str = "echo"

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        said = ""
        for content in reversed(llm_request.contents):
            texts = [part.text for part in content.parts or [] if part.text]
            if content.role == "user" and texts:
                said = " ".join(texts)
                break
        yield LlmResponse(
            content=types.Content(role="model", parts=[types.Part(text=f"You said: {said}")]),
            usage_metadata=types.GenerateContentResponseUsageMetadata(
                prompt_token_count=len(said.split()),
                candidates_token_count=len(said.split()) + 2,
            ),
        )


async def main(target: str) -> list[str]:
    """Run two turns, remember the session, search it; return what was printed."""
    db = agentkeep.connect(target)
    sessions, memory = AgentkeepSessionService(db), AgentkeepMemoryService(db)
    agent = LlmAgent(name="echo", model=EchoLlm(), instruction="Repeat the user.")
    runner = Runner(app_name=APP, agent=agent, session_service=sessions, memory_service=memory)
    session = await sessions.create_session(app_name=APP, user_id="alice", state={"user:lang": "en"})
    lines = []
    for words in ("I bought coffee for 300 roubles", "and a croissant"):
        message = types.Content(role="user", parts=[types.Part(text=words)])
        async for event in runner.run_async(
            user_id="alice", session_id=session.id, new_message=message
        ):
            if event.content and event.content.parts and event.content.parts[0].text:
                lines.append(f"{event.author}: {event.content.parts[0].text}")
    stored = await sessions.get_session(app_name=APP, user_id="alice", session_id=session.id)
    assert stored is not None
    await memory.add_session_to_memory(stored)
    found = await memory.search_memory(app_name=APP, user_id="alice", query="coffee")
    lines.append(f"stored events: {len(stored.events)}; state: {stored.state}")
    lines.extend(
        f"memory: {entry.content.parts[0].text}" for entry in found.memories if entry.content.parts
    )
    await db.aclose()
    return lines


if __name__ == "__main__":
    for line in asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "adk-example.db")):
        print(line)
