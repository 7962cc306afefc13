"""The model side of a turn: call the model, run the tools it asks for, call it again.

:class:`ToolLoop` streams what the model says as :class:`ChatEvent` s and records it in the
turn's :class:`Draft` as it arrives (so a reply cut short keeps what was said). Each tool's
result is stored as a ``tool`` message before the model is called again, at most
``AGENTKEEP_MAX_TOOL_ROUNDS`` calls per turn. A provider's or tool's failure is raised to the
turn, which decides how the reply ends.

Besides the agent's tools, the model is offered the built-in ``run_module`` tool while any active
ON_DEMAND module exists (unless the agent has a tool of that name): it runs the module it names
(see ``managers.modules``) and its result is stored like any tool's.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from agentkeep.config import Settings
from agentkeep.managers.agents import AgentInstance
from agentkeep.managers.modules import RUN_MODULE, run_for_model, run_module_spec
from agentkeep.managers.tools import ToolResult, ToolRunner
from agentkeep.managers.turn_store import TurnStore
from agentkeep.managers.turn_types import ChatEvent, Draft, Prepared, call_data
from agentkeep.models.config import Module
from agentkeep.models.conversation import MessageCreate
from agentkeep.models.enums import Role
from agentkeep.providers import get_provider
from agentkeep.providers.base import (
    ChatMessage,
    CompletionRequest,
    ProviderEvent,
    Thinking,
    Token,
    ToolCall,
    ToolCallRequest,
    ToolSpec,
)


@dataclass(frozen=True, slots=True)
class ToolLoop:
    """The model and tool calls of one turn."""

    instance: AgentInstance
    settings: Settings
    tools: ToolRunner
    store: TurnStore

    async def run(
        self, prepared: Prepared, prompt: list[ChatMessage], draft: Draft
    ) -> AsyncGenerator[ChatEvent, None]:
        """Stream the model's events; run each tool it asks for and call it again with them.

        After ``max_tool_rounds`` rounds of tool calls the model is called once more offering no
        tools, so that it answers with what they returned (and the reply says so in its
        metadata, ``tool_rounds_exhausted``)."""
        instance = self.instance
        provider = get_provider(instance.provider, self.settings)
        specs = tuple(ToolSpec(t.name, t.description, t.parameters) for t in instance.tools)
        on_demand: list[Module] = []
        if all(t.name != RUN_MODULE for t in instance.tools):  # the agent's own tool comes first
            on_demand = prepared.on_demand
        if on_demand:
            specs += (run_module_spec(on_demand),)
        rounds = self.settings.max_tool_rounds
        for round_ in range(rounds + 1):
            if round_ == rounds:
                specs = ()  # the last call: an answer, not another tool
                draft.tool_rounds_exhausted = True
            request = CompletionRequest(
                instance.model,
                tuple(prompt),
                specs,
                dict(instance.agent.model_settings),
                agent=instance,
            )
            said: list[str] = []
            calls: list[ToolCall] = []
            async with closing(provider.stream(request)) as stream:
                async for event in stream:
                    shown = take(event, draft, said, calls)
                    if shown is not None:
                        yield shown
            if not calls or not specs:  # done (a tool asked for when none was offered is not run)
                return
            prompt = [*prompt, ChatMessage("assistant", "".join(said), tool_calls=tuple(calls))]
            for call in calls:
                result_event, result = await self.run_tool(
                    prepared, draft, call, on_demand=on_demand, prompt=prompt
                )
                yield result_event
                prompt.append(ChatMessage("tool", result, tool_call_id=call.id))

    async def run_tool(
        self,
        prepared: Prepared,
        draft: Draft,
        call: ToolCall,
        *,
        on_demand: Sequence[Module] = (),
        prompt: Sequence[ChatMessage] = (),
    ) -> tuple[ChatEvent, str]:
        """Run one tool call and store its result; the ``tool_result`` event and the result.

        ``on_demand``: the modules the built-in ``run_module`` tool was offered with (none: it
        was not offered); ``prompt``: the turn so far, their input."""
        if on_demand and call.name == RUN_MODULE:
            content, is_error = await run_for_model(
                self.store.db,
                self.settings,
                self.instance,
                on_demand,
                call.arguments,
                conversation_id=prepared.conversation.id,
                prompt=prompt,
                latest=prepared.user_message.id,
            )
            result = self.tools.storable(call.name, ToolResult(content, is_error))
        else:
            result = await self.tools.run(self.instance.tools, call)
        tool = next((t for t in self.instance.tools if t.name == call.name), None)
        if tool is not None:
            draft.used_tools.append(tool.id)
        stored = await self.store.add_tool_result(
            prepared.conversation.id,
            MessageCreate(
                role=Role.TOOL,
                content=result.content,
                metadata={"tool_call_id": call.id, "name": call.name, "is_error": result.is_error},
            ),
        )
        draft.calls.append({**call_data(call), "is_error": result.is_error})
        data = {
            "id": call.id,
            "name": call.name,
            "content": result.content,
            "is_error": result.is_error,
            "message_id": str(stored.id),
        }
        return ChatEvent("tool_result", data), result.content


def take(
    event: ProviderEvent, draft: Draft, said: list[str], calls: list[ToolCall]
) -> ChatEvent | None:
    """Record one provider event in the draft; the event to show the client, if any."""
    if isinstance(event, Token):
        if draft.first_token_ms is None:
            draft.first_token_ms = (time.perf_counter() - draft.started) * 1000
        draft.text.append(event.text)  # kept as it arrives: a cancelled reply keeps it too
        said.append(event.text)
        return ChatEvent("token", {"text": event.text})
    if isinstance(event, Thinking):
        draft.thinking.append(event.text)
        return ChatEvent("thinking", {"text": event.text})
    if isinstance(event, ToolCallRequest):
        calls.append(event.call)
        return ChatEvent("tool_call", call_data(event.call))
    draft.count(event)
    return None


@asynccontextmanager
async def closing(
    stream: AsyncIterator[ProviderEvent],
) -> AsyncIterator[AsyncIterator[ProviderEvent]]:
    """Close a provider's stream however the loop over it ends (its HTTP response with it)."""
    try:
        yield stream
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()
