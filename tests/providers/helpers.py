"""Helpers of the provider tests: settings pointing at the fake server, requests, collecting."""

from __future__ import annotations

from typing import Any

from agentkeep.config import Settings
from agentkeep.providers import (
    ChatMessage,
    CompletionRequest,
    Provider,
    ProviderError,
    ProviderEvent,
    ToolSpec,
)
from providers.fake_openai import FakeOpenAI

KEY = "sk-test-secret-123"
WEATHER = ToolSpec(
    "get_weather",
    "The weather in a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def make_settings(server: FakeOpenAI, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": "memory",
        "openai_base_url": server.base_url,
        "openai_api_key": KEY,
        "openai_model": "default-model",
        "provider_timeout": 5.0,
    }
    return Settings(**(values | overrides))


def ask(
    text: str = "hi", *, model: str = "gpt-test", tools: tuple[ToolSpec, ...] = (), **settings: Any
) -> CompletionRequest:
    messages = (ChatMessage("system", "Be brief."), ChatMessage("user", text))
    return CompletionRequest(model=model, messages=messages, tools=tools, settings=settings)


async def run(provider: Provider, request: CompletionRequest) -> list[ProviderEvent]:
    return [event async for event in provider.stream(request)]


async def run_until_error(
    provider: Provider, request: CompletionRequest
) -> tuple[list[ProviderEvent], ProviderError]:
    """The events streamed before the call failed, and its error."""
    received: list[ProviderEvent] = []
    try:
        async for event in provider.stream(request):
            received.append(event)
    except ProviderError as exc:
        return received, exc
    raise AssertionError("the call did not fail")
