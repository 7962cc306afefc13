"""The ``openai`` provider: any OpenAI-compatible chat-completions endpoint, via the official SDK.

OpenAI itself, Ollama, vLLM, llama.cpp's server, LM Studio — anything that speaks
``POST /chat/completions`` with server-sent events. One call streams with
``stream_options={"include_usage": True}``: ``delta.content`` (or a ``refusal``) becomes ``Token``
events, reasoning text (``delta.reasoning_content`` or ``delta.reasoning``, which vLLM, Ollama,
llama.cpp and OpenRouter send outside the official schema) becomes ``Thinking``, tool-call deltas
are accumulated by index into complete ``ToolCallRequest``s (emitted once the stream ends, in
index order), and the final usage chunk becomes ``Usage``.

Where the endpoint is, per agent (``model_settings``) over the settings (``AGENTKEEP_OPENAI_*``):

- ``base_url`` over ``openai_base_url`` (unset: the SDK's default, ``OPENAI_BASE_URL`` or OpenAI);
- the model: the request's model (the agent's), else ``model_settings.model``, else
  ``openai_model``;
- the key: ``api_key_env`` names an environment variable holding it (the name must end in
  ``_API_KEY``); else ``openai_api_key``, else ``OPENAI_API_KEY``. A key is never stored in an
  agent (``model_settings.api_key`` is refused), and the configured key is only sent to the
  configured base URL — an agent that points ``base_url`` elsewhere gets no key unless it names
  one, so whoever may edit agents cannot send the operator's key to a server of their choosing;
- ``timeout`` (seconds) over ``provider_timeout``. It bounds connecting and each wait for the
  next chunk — not the whole reply, so a long answer that keeps streaming is not cut off;
- passed through when present: ``temperature``, ``top_p``, ``max_tokens``,
  ``max_completion_tokens``, ``presence_penalty``, ``frequency_penalty``, ``seed``, ``stop``,
  ``parallel_tool_calls``, ``reasoning_effort``, and ``extra_body`` (a JSON object merged into the
  request, for endpoint-specific parameters such as vLLM's ``top_k``). Other keys are ignored:
  ``model_settings`` may carry options meant for another provider.

Needs ``openai>=1.55.3`` (older releases break with httpx 0.28). The SDK does not retry
(``max_retries=0``): each retry would get a fresh timeout and a backoff, multiplying how long a
waiting user sees nothing; the runtime reports the failure and the user may send again.
Timeouts become ``ProviderTimeoutError``; HTTP errors, unreachable servers and malformed answers
become ``ProviderError`` with the status and the server's message, never the key. One
``AsyncOpenAI`` client (one connection pool) is kept per event loop, base URL and key;
``aclose()`` closes them. Its HTTP client is the SDK's default one given explicitly, which the
SDK does not close when it is garbage-collected: its own would schedule that on whatever event
loop runs then, and fail there if the client's loop is gone.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio.lowlevel
import openai
from openai.types.chat import (
    ChatCompletionAssistantMessageParam,
    ChatCompletionChunk,
    ChatCompletionMessageParam,
    ChatCompletionMessageToolCallParam,
    ChatCompletionToolParam,
)
from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCall
from openai.types.shared_params import FunctionDefinition

from agentkeep.config import Settings
from agentkeep.providers.base import (
    ChatMessage,
    CompletionRequest,
    ProviderError,
    ProviderEvent,
    ProviderTimeoutError,
    Thinking,
    Token,
    ToolCall,
    ToolCallRequest,
    ToolSpec,
    Usage,
)

PASSTHROUGH = (
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "stop",
    "parallel_tool_calls",
    "reasoning_effort",
)
MAX_RETRIES = 0
NO_KEY = "no-key"
"""Sent when no key is configured: local servers ignore it, and the SDK refuses to run keyless."""
_MESSAGE_LIMIT = 500


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where one call goes and how long it may stall."""

    base_url: str | None
    api_key: str
    model: str
    timeout: float


def resolve_endpoint(request: CompletionRequest, settings: Settings) -> Endpoint:
    """The agent's ``model_settings`` over the settings; see the module docstring."""
    options = request.settings
    base_url = _option(options, "base_url", str) or settings.openai_base_url
    model = request.model or _option(options, "model", str) or settings.openai_model
    timeout = _option(options, "timeout", float)
    timeout = settings.provider_timeout if timeout is None else timeout
    if timeout <= 0:
        raise _bad("timeout", "must be a number of seconds above 0")
    return Endpoint(base_url, _api_key(options, settings, base_url), model, timeout)


def _api_key(options: Mapping[str, Any], settings: Settings, base_url: str | None) -> str:
    if "api_key" in options:
        raise _bad(
            "api_key",
            "is refused: keep the key in an environment variable and name it in api_key_env",
        )
    env = _option(options, "api_key_env", str)
    if env:
        if not env.endswith("_API_KEY"):
            raise _bad("api_key_env", "must name a variable ending in _API_KEY")
        if not os.environ.get(env):
            raise _bad("api_key_env", f"names {env}, which is not set")
        return os.environ[env]
    if _same_url(base_url, settings.openai_base_url):
        if settings.openai_api_key is not None:
            return settings.openai_api_key.get_secret_value()
        return os.environ.get("OPENAI_API_KEY") or NO_KEY
    return NO_KEY


def _same_url(a: str | None, b: str | None) -> bool:
    return (a or "").rstrip("/") == (b or "").rstrip("/")


def _option(options: Mapping[str, Any], key: str, kind: type[str] | type[float]) -> Any:
    value = options.get(key)
    if value is None:
        return None
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind is str and isinstance(value, str):
        return value
    raise _bad(key, "must be a number" if kind is float else "must be a string")


def _bad(key: str, problem: str) -> ProviderError:
    return ProviderError(f"model_settings.{key} {problem}", field=f"model_settings.{key}")


class OpenAIProvider:
    """Streams one chat-completions call to an OpenAI-compatible endpoint."""

    name = "openai"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._clients: dict[tuple[object, str | None, str], openai.AsyncOpenAI] = {}

    def client(self, endpoint: Endpoint) -> openai.AsyncOpenAI:
        """The pooled client for this event loop, base URL and key (made on first use)."""
        # an httpx pool belongs to the event loop it was opened in, so a client is never shared
        # across loops (tests and portals run several)
        key = (anyio.lowlevel.current_token(), endpoint.base_url, endpoint.api_key)
        if key not in self._clients:
            self._clients[key] = openai.AsyncOpenAI(
                base_url=endpoint.base_url,
                api_key=endpoint.api_key,
                timeout=self.settings.provider_timeout,
                max_retries=MAX_RETRIES,
                http_client=openai.DefaultAsyncHttpxClient(timeout=self.settings.provider_timeout),
            )
        return self._clients[key]

    async def aclose(self) -> None:
        """Close the clients of this event loop; forget those of loops that are gone."""
        current = anyio.lowlevel.current_token()
        clients, self._clients = self._clients, {}
        for (loop, _, _), client in clients.items():
            if loop == current:
                await client.close()

    async def stream(self, request: CompletionRequest) -> AsyncGenerator[ProviderEvent, None]:
        endpoint = resolve_endpoint(request, self.settings)
        client = self.client(endpoint)
        calls = _ToolCalls()
        usage: Usage | None = None
        try:
            response = await client.chat.completions.create(
                **_arguments(request, endpoint), stream=True
            )
            async with response:
                async for chunk in response:
                    usage = _usage(chunk) or usage
                    for event in _events(chunk, calls):
                        yield event
        except Exception as exc:
            error = _translate(exc, _where(client), endpoint)
            if error is None:
                raise
            raise error from None
        for call in calls.complete():
            yield ToolCallRequest(call)
        if usage is not None:
            yield usage


def _arguments(request: CompletionRequest, endpoint: Endpoint) -> dict[str, Any]:
    """The keyword arguments of ``chat.completions.create`` (except ``stream``)."""
    options = request.settings
    arguments: dict[str, Any] = {key: options[key] for key in PASSTHROUGH if key in options}
    extra_body = options.get("extra_body")
    if extra_body is not None:
        if not isinstance(extra_body, dict):
            raise _bad("extra_body", "must be a JSON object")
        arguments["extra_body"] = extra_body
    if request.tools:  # some servers refuse an empty list
        arguments["tools"] = [_tool(tool) for tool in request.tools]
    return {
        **arguments,
        "model": endpoint.model,
        "messages": [_message(message) for message in request.messages],
        "stream_options": {"include_usage": True},
        "timeout": endpoint.timeout,
    }


def _message(message: ChatMessage) -> ChatCompletionMessageParam:
    if message.role == "tool":
        if message.tool_call_id is None:
            raise ProviderError("a tool result in the prompt has no tool_call_id")
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    if message.role == "assistant":
        reply: ChatCompletionAssistantMessageParam = {
            "role": "assistant",
            "content": message.content,
        }
        if message.tool_calls:
            reply["tool_calls"] = [_call(call) for call in message.tool_calls]
        return reply
    if message.role == "system":
        return {"role": "system", "content": message.content}
    return {"role": "user", "content": message.content}


def _call(call: ToolCall) -> ChatCompletionMessageToolCallParam:
    arguments = json.dumps(call.arguments)  # the wire format carries them as JSON text
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": arguments},
    }


def _tool(tool: ToolSpec) -> ChatCompletionToolParam:
    function: FunctionDefinition = {"name": tool.name, "parameters": tool.parameters}
    if tool.description:
        function["description"] = tool.description
    return {"type": "function", "function": function}


def _events(chunk: ChatCompletionChunk, calls: _ToolCalls) -> list[ProviderEvent]:
    events: list[ProviderEvent] = []
    for choice in chunk.choices:
        delta = getattr(choice, "delta", None)  # llama.cpp may send a choice without one
        if choice.index != 0 or delta is None:  # one completion is asked for (n=1)
            continue
        reasoning = getattr(delta, "reasoning_content", None) or getattr(delta, "reasoning", None)
        if isinstance(reasoning, str) and reasoning:
            events.append(Thinking(reasoning))
        if delta.content:
            events.append(Token(delta.content))
        if delta.refusal:  # OpenAI sends a refusal instead of content: it is the reply
            events.append(Token(delta.refusal))
        for part in delta.tool_calls or ():
            calls.add(part)
    return events


def _usage(chunk: ChatCompletionChunk) -> Usage | None:
    if chunk.usage is None:
        return None
    return Usage(chunk.usage.prompt_tokens or 0, chunk.usage.completion_tokens or 0)


@dataclass(slots=True)
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: str = ""


class _ToolCalls:
    """Tool calls as they stream: the id and name come once, the arguments in pieces."""

    def __init__(self) -> None:
        self.parts: dict[int, _PartialCall] = {}

    def add(self, delta: ChoiceDeltaToolCall) -> None:
        part = self.parts.setdefault(delta.index, _PartialCall())
        part.id = part.id or (delta.id or "")
        if delta.function is not None:
            part.name = part.name or (delta.function.name or "")
            part.arguments += delta.function.arguments or ""

    def complete(self) -> list[ToolCall]:
        return [_finish(index, self.parts[index]) for index in sorted(self.parts)]


def _finish(index: int, part: _PartialCall) -> ToolCall:
    if not part.name:
        raise ProviderError(f"the model sent tool call #{index + 1} without a tool name")
    try:
        arguments = json.loads(part.arguments) if part.arguments.strip() else {}
    except json.JSONDecodeError as exc:
        raise ProviderError(
            f"the model called tool {part.name!r} with arguments that are not valid JSON: {exc}"
        ) from None
    if not isinstance(arguments, dict):
        raise ProviderError(
            f"the model called tool {part.name!r} with arguments that are not a JSON object"
        )
    # some servers send no id; the runtime needs one to pair the call with its result
    return ToolCall(id=part.id or f"call_{index + 1}", name=part.name, arguments=arguments)


def _where(client: openai.AsyncOpenAI) -> str:
    """The client's base URL as it may be shown: without any user or password in it."""
    parts = urlsplit(str(client.base_url))
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc)).rstrip("/")


def _translate(exc: Exception, where: str, endpoint: Endpoint) -> ProviderError | None:
    """The ``ProviderError`` for an SDK (or transport) error; ``None`` for anything else."""
    if isinstance(exc, openai.APITimeoutError) or _from_httpx(exc, "TimeoutException"):
        return ProviderTimeoutError(
            f"the model provider at {where} sent nothing for {endpoint.timeout:g} s (timeout)"
        )
    if isinstance(exc, openai.APIStatusError):
        detail = _server_message(exc.body) or exc.response.reason_phrase
        message = f"the model provider at {where} answered HTTP {exc.status_code}: {detail}"
    elif isinstance(exc, openai.APIConnectionError):
        message = f"cannot reach the model provider at {where}: {exc.__cause__ or exc}"
    elif isinstance(exc, openai.APIError):  # an error event inside the stream
        message = f"the model provider at {where} failed: {_server_message(exc.body) or exc}"
    elif isinstance(exc, openai.OpenAIError) or _from_httpx(exc, "TransportError"):
        message = f"the model provider at {where} failed: {exc}"
    else:
        return None
    if endpoint.api_key != NO_KEY:
        message = message.replace(endpoint.api_key, "***")
    return ProviderError(message[:_MESSAGE_LIMIT])


def _from_httpx(exc: Exception, name: str) -> bool:
    """Whether ``exc`` is httpx's (or httpx2's) ``name`` error.

    Older SDKs let transport errors escape unwrapped once a stream is being read; matching by
    name covers whichever httpx the installed SDK is built on without importing it.
    """
    return any(
        cls.__name__ == name and cls.__module__.startswith("httpx") for cls in type(exc).__mro__
    )


def _server_message(body: object) -> str:
    """The error message of an OpenAI-style error body (``{"message": ...}``), else the body."""
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, Mapping) else inner
        return str(message) if message else json.dumps(body)
    return "" if body is None else str(body)
