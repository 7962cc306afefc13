"""The ``echo`` provider: an offline, deterministic stand-in for a model.

It is what agents use when no real model is configured, so ``make run`` chats with no network
and no key, and what the runtime's tests drive. Its reply says plainly that it is the offline
echo model and repeats the last user message (and, after a tool call, what the tool returned),
streamed word by word so streaming, stopping and storing a partial reply can be watched.

The agent's ``model_settings`` steer it (every key optional; other keys are ignored, since
``model_settings`` may also carry options meant for another provider):

- ``thinking: true`` — emit ``Thinking`` first ("The user wrote N words; I will repeat them.");
- ``tool_call: "<name>"`` or ``{"name": ..., "arguments": {...}}`` — when the prompt ends with
  the user's message and that tool is offered, ask for it (id ``call_1``) instead of replying;
  once the runtime sends the tool's result back, reply and echo the result too;
- ``token_delay_ms: N`` — wait N ms between streamed pieces (watch tokens arrive, stop midway);
- ``fail: "message"`` — raise ``ProviderError(message)`` before anything is streamed;
- ``fail_after_tokens: N`` (with ``fail``) — stream N tokens first, then fail (at the end of
  the reply if it is shorter).

Usage is deterministic: input tokens are the whitespace-separated words of every message in
the prompt, output tokens the number of ``Token`` events (thinking and tool calls count none).
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import anyio

from agentkeep.providers.base import (
    ChatMessage,
    CompletionRequest,
    ProviderError,
    ProviderEvent,
    Thinking,
    Token,
    ToolCall,
    ToolCallRequest,
    Usage,
)

PREFIX = "(echo, the offline model)"
CALL_ID = "call_1"

# a word with the whitespace that follows it (and, for the first, any that precedes it), so the
# pieces concatenate back to exactly the reply
_PIECE = re.compile(r"\s*\S+\s*")


@dataclass(frozen=True, slots=True)
class EchoOptions:
    """The echo model's options, read (and checked) from an agent's ``model_settings``."""

    thinking: bool = False
    tool_call: ToolCall | None = None
    token_delay: float = 0.0
    fail: str | None = None
    fail_after_tokens: int = 0

    @classmethod
    def parse(cls, settings: Mapping[str, Any]) -> EchoOptions:
        """Read the options; a known key with a value of the wrong type is a ``ProviderError``."""
        thinking = settings.get("thinking", False)
        if not isinstance(thinking, bool):
            raise _bad("thinking", "must be true or false")
        delay = settings.get("token_delay_ms", 0)
        if isinstance(delay, bool) or not isinstance(delay, int | float) or delay < 0:
            raise _bad("token_delay_ms", "must be a number of milliseconds, 0 or more")
        fail = settings.get("fail")
        if fail is not None and not (isinstance(fail, str) and fail):
            raise _bad("fail", "must be the error message to raise")
        after = settings.get("fail_after_tokens", 0)
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise _bad("fail_after_tokens", "must be a whole number, 0 or more")
        return cls(
            thinking=thinking,
            tool_call=_parse_tool_call(settings.get("tool_call")),
            token_delay=delay / 1000,
            fail=fail,
            fail_after_tokens=after,
        )


def _bad(key: str, problem: str) -> ProviderError:
    return ProviderError(f"echo model option {key!r} {problem}", field=f"model_settings.{key}")


def _parse_tool_call(value: object) -> ToolCall | None:
    if value is None:
        return None
    if isinstance(value, str) and value:
        return ToolCall(id=CALL_ID, name=value, arguments={})
    if isinstance(value, dict):
        name, arguments = value.get("name"), value.get("arguments", {})
        if isinstance(name, str) and name and isinstance(arguments, dict):
            return ToolCall(id=CALL_ID, name=name, arguments=arguments)
    raise _bad("tool_call", 'must be a tool name or {"name": ..., "arguments": {...}}')


class EchoProvider:
    """Streams a deterministic reply that echoes the prompt; no network, no key."""

    name = "echo"

    async def stream(self, request: CompletionRequest) -> AsyncGenerator[ProviderEvent, None]:
        options = EchoOptions.parse(request.settings)
        if options.fail is not None and options.fail_after_tokens == 0:
            raise ProviderError(options.fail)
        usage_in = sum(len(message.content.split()) for message in request.messages)
        call = _call_to_make(options, request)
        pace = _Pacer(options.token_delay)
        if options.thinking:
            async for piece in pace(_pieces(_thinking(request.messages, call))):
                yield Thinking(piece)
        if call is not None:
            yield ToolCallRequest(call)
            yield Usage(input_tokens=usage_in, output_tokens=0)
            return
        count = 0
        async for piece in pace(_pieces(reply_text(request.messages))):
            if options.fail is not None and count == options.fail_after_tokens:
                raise ProviderError(options.fail)
            count += 1
            yield Token(piece)
        if options.fail is not None:  # the reply was shorter than fail_after_tokens
            raise ProviderError(options.fail)
        yield Usage(input_tokens=usage_in, output_tokens=count)


class _Pacer:
    """Spaces pieces ``delay`` seconds apart, across thinking and reply alike."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.started = False

    async def __call__(self, pieces: list[str]) -> AsyncIterator[str]:
        for piece in pieces:
            if self.started and self.delay:
                await anyio.sleep(self.delay)
            self.started = True
            yield piece


def _pieces(text: str) -> list[str]:
    return _PIECE.findall(text)


def _call_to_make(options: EchoOptions, request: CompletionRequest) -> ToolCall | None:
    """The configured call, when it is offered and the prompt ends with the user's message."""
    call = options.tool_call
    if call is None or not request.messages or request.messages[-1].role != "user":
        return None
    return call if any(tool.name == call.name for tool in request.tools) else None


def _thinking(messages: tuple[ChatMessage, ...], call: ToolCall | None) -> str:
    words = len(_last_user_text(messages).split())
    plan = f"I will call the tool {call.name} first." if call else "I will repeat them."
    return f"The user wrote {words} word{'' if words == 1 else 's'}; {plan}"


def reply_text(messages: tuple[ChatMessage, ...]) -> str:
    """The full reply to ``messages``: the last user message, then each tool result after it."""
    said = _last_user_text(messages)
    parts = [f"{PREFIX} You said: {said}" if said.strip() else f"{PREFIX} You said nothing."]
    names = {c.id: c.name for m in messages if m.role == "assistant" for c in m.tool_calls}
    for message in _after_last_user(messages):
        if message.role == "tool":
            name = names.get(message.tool_call_id or "", message.tool_call_id or "?")
            parts.append(f"The tool {name} returned: {message.content}")
    return " ".join(parts)


def _last_user_text(messages: tuple[ChatMessage, ...]) -> str:
    return next((m.content for m in reversed(messages) if m.role == "user"), "")


def _after_last_user(messages: tuple[ChatMessage, ...]) -> tuple[ChatMessage, ...]:
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == "user":
            return messages[index + 1 :]
    return messages
