"""Building a turn's prompt from what the store keeps: persona, modules, memories, history.

In order: a system message (the persona's template, else a plain one naming the agent, followed
by the IMMEDIATE modules whose trigger matches the user's message, by stage priority, and last
the memories recalled for the turn under "What you remember about this user:", one line each,
best first); the persona's first message when the conversation's history is shown from its
start; the history the agent asks for; the user's new message.

Triggers (:func:`triggered`): a module's ``trigger_pattern`` is searched for with the ``regex``
engine (the syntax of Python's ``re``), off the event loop in a worker thread, each pattern for
at most :data:`TRIGGER_TIMEOUT` seconds of CPU time. A pattern that backtracks without end
(``(a|a)+$`` against a long run of ``a``) therefore neither stalls the server nor holds up the
turn for long: the engine gives up, its thread is free again, and the module is left out of the
turn. Such a failure (a timeout, or a stored pattern the engine cannot compile) is logged with
the module's name and reported in the reply's ``metadata.warnings`` (each with ``code``
``trigger_timeout`` or ``trigger_invalid``, ``module`` and ``message``), which ``message_end``
also carries.

History (``agent.include_history``; options in ``model_settings``): the agent's earlier turns
with the same user, across all that user's conversations with the agent (the conversation's
``user_id``), counted back from the most recently active one; each conversation's messages stay
together and in order, and this conversation's come last. A conversation without a ``user_id``
has no other conversations to draw on: only its own earlier messages.

- ``history_messages`` (default 20): at most this many earlier messages;
- ``history_tokens``: also at most about this many tokens (4 characters a token), oldest
  dropped first;
- ``history_scope``: ``"conversation"`` keeps to this conversation's earlier messages; ``"user"``
  (or leaving it out) is the default above.

Failed replies and replies still streaming are left out; a cancelled reply's partial text stays.
A reply that called tools is rebuilt as the model saw it: the assistant's calls, the tool results
(stored as ``tool`` messages after it), then the assistant's text.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread

from agentkeep.managers.agents import AgentInstance
from agentkeep.models.config import Module, check_model_settings, compile_trigger
from agentkeep.models.conversation import Message, ToolCallRecord
from agentkeep.models.enums import MessageStatus, Role
from agentkeep.providers.base import ChatMessage, ToolCall

DEFAULT_HISTORY_MESSAGES = 20
CONVERSATION_SCOPE = "conversation"
"""``model_settings.history_scope`` that keeps an agent's history to the conversation itself."""
CHARS_PER_TOKEN = 4
_SKIPPED = {MessageStatus.ERROR, MessageStatus.STREAMING}

log = logging.getLogger("agentkeep.chat")

TRIGGER_TIMEOUT = 0.1
"""Seconds of CPU time one trigger pattern may spend on a message before its module is left out
(a normal trigger takes microseconds; on a busy machine the wall-clock wait may be longer)."""

_MATCHING = anyio.CapacityLimiter(4)
"""Threads searching triggers at once: a burst of runaway patterns keeps at most this many cores
busy (each for at most :data:`TRIGGER_TIMEOUT`) and never takes the store's threads."""


def history_limits(settings: dict[str, Any]) -> tuple[int, int | None]:
    """(messages, tokens) the agent's ``model_settings`` ask for, with their defaults.

    Raises:
        ValidationError: a setting is not what the turn can read (naming
            ``model_settings.<key>``); agents saved since they are checked never have one, an
            agent stored before may.
    """
    check_model_settings(settings)
    messages = settings.get("history_messages")
    tokens = settings.get("history_tokens")
    return DEFAULT_HISTORY_MESSAGES if messages is None else messages, tokens


@dataclass(frozen=True, slots=True)
class TriggerFailure:
    """A module left out of a turn because its trigger could not be checked."""

    module: str
    code: str
    """``trigger_timeout`` or ``trigger_invalid``."""
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "module": self.module, "message": self.message}


@dataclass(frozen=True, slots=True)
class Triggered:
    """The modules whose trigger matched (no trigger: always), in the order given."""

    modules: list[Module]
    failures: list[TriggerFailure] = field(default_factory=list)
    """The modules left out because their trigger timed out or does not compile."""


async def triggered(
    modules: Iterable[Module], text: str, *, timeout: float | None = None
) -> Triggered:
    """The modules whose trigger matches ``text``; never blocks the event loop.

    Args:
        modules: the candidates, in the order they run.
        text: what the triggers are searched in.
        timeout: seconds each pattern may take (default :data:`TRIGGER_TIMEOUT`).
    """
    candidates = list(modules)
    if all(m.trigger_pattern is None for m in candidates):
        return Triggered(candidates)
    limit = TRIGGER_TIMEOUT if timeout is None else timeout
    found = await anyio.to_thread.run_sync(
        _search_all, candidates, text, limit, abandon_on_cancel=True, limiter=_MATCHING
    )
    for failure in found.failures:
        log.warning("module %r left out of the turn: %s", failure.module, failure.message)
    return found


def _search_all(modules: list[Module], text: str, timeout: float) -> Triggered:
    chosen: list[Module] = []
    failures: list[TriggerFailure] = []
    for module in modules:
        pattern = module.trigger_pattern
        try:
            # the engine releases the GIL while it searches a str: the event loop keeps running
            if pattern is None or _compiled(pattern).search(text, timeout=timeout):
                chosen.append(module)
        except TimeoutError:
            failures.append(
                TriggerFailure(
                    module.name,
                    "trigger_timeout",
                    f"the trigger of module {module.name!r} took longer than "
                    f"{timeout * 1000:g} ms on this message; the module was left out",
                )
            )
        except ValueError as exc:  # saved before the engine checked patterns at save time
            failures.append(
                TriggerFailure(
                    module.name,
                    "trigger_invalid",
                    f"the trigger of module {module.name!r} {exc}; the module was left out",
                )
            )
    return Triggered(chosen, failures)


_compiled = functools.lru_cache(maxsize=1024)(compile_trigger)


MEMORY_SECTION = "What you remember about this user:"
"""The heading of the system prompt's section of recalled memories."""


def system_prompt(
    instance: AgentInstance, modules: Sequence[Module], memories: Sequence[str] = ()
) -> str:
    agent, persona = instance.agent, instance.persona
    if persona is not None:
        base = persona.template
    else:
        base = f"You are {agent.name}." + (f" {agent.description}" if agent.description else "")
    parts = [base, *(m.content for m in modules if m.content)]
    if memories:
        parts.append("\n".join([MEMORY_SECTION, *(f"- {line}" for line in memories)]))
    return "\n\n".join(parts)


def build_prompt(
    instance: AgentInstance,
    modules: Sequence[Module],
    history: Sequence[Message],
    user_text: str,
    *,
    memories: Sequence[str] = (),
) -> list[ChatMessage]:
    """The prompt for one turn.

    ``modules`` are the IMMEDIATE modules chosen for it (see :func:`triggered`); ``history`` is
    oldest first and already limited; ``memories`` are the recalled memories, one line each,
    best first (``managers.turn_memory``).
    """
    prompt = [ChatMessage("system", system_prompt(instance, modules, memories))]
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
