"""Building a turn's prompt from what the store keeps: persona, modules, history.

In order: a system message (the persona's template, else a plain one naming the agent, followed
by the IMMEDIATE modules whose trigger matches the user's message, by stage priority); the
persona's first message when the conversation's history is shown from its start; the history
the agent asks for; the user's new message.

History (``agent.include_history``; options in ``model_settings``):

- ``history_messages`` (default 20): at most this many earlier messages;
- ``history_tokens``: also at most about this many tokens (4 characters a token), oldest
  dropped first;
- ``history_scope: "user"``: also the last messages of the same user's earlier conversations
  with this agent (their prior turns), before this conversation's own.

Failed replies and replies still streaming are left out; a cancelled reply's partial text stays.
A reply that called tools is rebuilt as the model saw it: the assistant's calls, the tool results
(stored as ``tool`` messages after it), then the assistant's text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from agentkeep.managers.agents import AgentInstance
from agentkeep.models.config import Module
from agentkeep.models.conversation import Message, ToolCallRecord
from agentkeep.models.enums import MessageStatus, Role
from agentkeep.providers.base import ChatMessage, ToolCall

DEFAULT_HISTORY_MESSAGES = 20
CHARS_PER_TOKEN = 4
_SKIPPED = {MessageStatus.ERROR, MessageStatus.STREAMING}


def history_limits(settings: dict[str, Any]) -> tuple[int, int | None]:
    """(messages, tokens) the agent's ``model_settings`` ask for, with their defaults."""
    messages = settings.get("history_messages", DEFAULT_HISTORY_MESSAGES)
    tokens = settings.get("history_tokens")
    if not isinstance(messages, int) or messages < 0:
        messages = DEFAULT_HISTORY_MESSAGES
    if tokens is not None and (not isinstance(tokens, int) or tokens < 0):
        tokens = None
    return messages, tokens


def matching(modules: Iterable[Module], text: str) -> list[Module]:
    """The modules whose trigger matches ``text`` (no trigger: always), in the order given."""
    return [m for m in modules if m.trigger_pattern is None or re.search(m.trigger_pattern, text)]


def system_prompt(instance: AgentInstance, modules: Sequence[Module]) -> str:
    agent, persona = instance.agent, instance.persona
    if persona is not None:
        base = persona.template
    else:
        base = f"You are {agent.name}." + (f" {agent.description}" if agent.description else "")
    parts = [base, *(m.content for m in modules if m.content)]
    return "\n\n".join(parts)


def build_prompt(
    instance: AgentInstance,
    modules: Sequence[Module],
    history: Sequence[Message],
    user_text: str,
) -> list[ChatMessage]:
    """The prompt for one turn; ``history`` is oldest first and already limited."""
    prompt = [ChatMessage("system", system_prompt(instance, matching(modules, user_text)))]
    persona = instance.persona
    if persona is not None and persona.first_message and (not history or history[0].seq == 1):
        prompt.append(ChatMessage("assistant", persona.first_message))
    prompt += from_history(history)
    prompt.append(ChatMessage("user", user_text))
    return prompt


def trim(history: Sequence[Message], messages: int, tokens: int | None) -> list[Message]:
    """The newest ``messages`` of ``history`` that fit in ``tokens`` (oldest first)."""
    kept = [m for m in history if m.status not in _SKIPPED][-messages:] if messages else []
    if tokens is None:
        return kept
    budget, start = tokens * CHARS_PER_TOKEN, len(kept)
    while start > 0 and budget - len(kept[start - 1].content) >= 0:
        start -= 1
        budget -= len(kept[start].content)
    return kept[start:]


def from_history(history: Sequence[Message]) -> list[ChatMessage]:
    out: list[ChatMessage] = []
    pending: str | None = None  # a tool-calling reply's text, shown after its tool results
    called: set[str] = set()  # a result whose call was trimmed away would confuse the model
    for message in history:
        if pending is not None and message.role != Role.TOOL:
            out.append(ChatMessage("assistant", pending))
            pending = None
        if message.role == Role.TOOL:
            call_id = str(message.metadata.get("tool_call_id"))
            if call_id in called:
                out.append(ChatMessage("tool", message.content, tool_call_id=call_id))
        elif message.role == Role.ASSISTANT and message.tool_calls:
            calls = tuple(_calls(message.tool_calls))
            called.update(call.id for call in calls)
            out.append(ChatMessage("assistant", "", tool_calls=calls))
            pending = message.content or None
        else:
            out.append(ChatMessage(message.role.value, message.content))  # type: ignore[arg-type]
    if pending is not None:
        out.append(ChatMessage("assistant", pending))
    return out


def _calls(stored: list[ToolCallRecord | dict[str, Any]]) -> Iterable[ToolCall]:
    for call in stored:
        if isinstance(call, ToolCallRecord):  # an older release's other shape is left out
            yield ToolCall(call.id or "", call.name, call.arguments)
