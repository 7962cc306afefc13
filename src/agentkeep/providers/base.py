"""What an LLM provider is to agentkeep: a ``Protocol`` that streams one model call's events.

A provider turns a :class:`CompletionRequest` (the prompt as chat messages, the tools the agent
may call, the model and its settings) into a stream of events: ``Thinking`` and ``Token`` text as
it arrives, each complete ``ToolCallRequest``, and ``Usage`` once the provider knows the token
counts. Running tools, storing messages and the loop of call → tool results → call again belong
to the chat runtime (``managers/chat.py``), not to providers; a provider makes one call.

A provider raises :class:`ProviderError` (or :class:`ProviderTimeoutError`) for anything that
goes wrong on its side, with a message fit to show a user; the runtime turns it into an ``error``
event and stores the reply with status ``error``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from agentkeep.errors import AgentkeepError

ChatRole = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A model's request to call a tool; ``id`` pairs it with its result."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of the prompt, in the chat-completions shape every provider maps from."""

    role: ChatRole
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    """On an assistant message: the calls it made (their results follow as ``tool`` messages)."""
    tool_call_id: str | None = None
    """On a ``tool`` message: which call this is the result of."""


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool the model may call: its name, what it does and a JSON Schema for its arguments."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object"})


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    model: str
    messages: tuple[ChatMessage, ...]
    tools: tuple[ToolSpec, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)
    """The agent's ``model_settings``: temperature, max_tokens and provider-specific options."""
    agent: object | None = field(default=None, compare=False, repr=False)
    """The agent making the call (a ``managers.agents.AgentInstance``), for a provider that runs
    the agent in a framework of its own (``adk``); the others ignore it."""


@dataclass(frozen=True, slots=True)
class Thinking:
    text: str


@dataclass(frozen=True, slots=True)
class Token:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallRequest:
    call: ToolCall


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int
    output_tokens: int


ProviderEvent = Thinking | Token | ToolCallRequest | Usage


@runtime_checkable
class Provider(Protocol):
    """Streams the events of one model call. Implementations: ``echo``, ``openai``."""

    name: str

    def stream(self, request: CompletionRequest) -> AsyncIterator[ProviderEvent]:
        """Yield the call's events in order; raise ``ProviderError`` when the call fails."""
        ...


class ProviderError(AgentkeepError):
    """The model provider failed: an HTTP error, a refused request, a malformed answer."""

    code = "provider_error"
    exit_code = 7


class ProviderTimeoutError(ProviderError):
    """The model provider did not answer in time."""

    code = "provider_timeout"
