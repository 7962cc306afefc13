"""The ``openai`` provider when things go wrong: HTTP errors, error events, timeouts, unreachable
servers, malformed tool arguments, bad ``model_settings`` and where the key may go."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

from agentkeep.providers import (
    ProviderError,
    ProviderTimeoutError,
    Token,
)
from agentkeep.providers.openai import OpenAIProvider
from providers.fake_openai import (
    FakeOpenAI,
    Reply,
    chunk,
    openai_error,
    text_chunks,
    tool_delta,
)
from providers.helpers import KEY, WEATHER, ask, make_settings, run, run_until_error

pytestmark = pytest.mark.anyio


async def test_malformed_tool_arguments_name_the_tool(
    provider: OpenAIProvider, openai_server: FakeOpenAI
) -> None:
    chunks = [tool_delta(0, call_id="c1", name="get_weather", arguments='{"city": "Par')]
    openai_server.script(Reply(chunks=chunks))
    with pytest.raises(
        ProviderError, match=r"'get_weather' with arguments that are not valid JSON"
    ):
        await run(provider, ask(tools=(WEATHER,)))


async def test_http_500_is_a_provider_error_with_the_servers_message(
    provider: OpenAIProvider, openai_server: FakeOpenAI
) -> None:
    error = openai_error("The server had an error while processing your request.", "server_error")
    openai_server.script(Reply(status=500, error=error))
    with pytest.raises(ProviderError) as caught:
        await run(provider, ask())
    assert not isinstance(caught.value, ProviderTimeoutError)
    assert caught.value.message == (
        f"the model provider at {openai_server.base_url} answered HTTP 500: "
        "The server had an error while processing your request."
    )
    assert len(openai_server.received) == 1  # not retried


async def test_http_401_never_shows_the_key(
    provider: OpenAIProvider, openai_server: FakeOpenAI
) -> None:
    error = openai_error(f"Incorrect API key provided: {KEY}.", "invalid_request_error")
    openai_server.script(Reply(status=401, error=error))
    with pytest.raises(ProviderError, match="HTTP 401: Incorrect API key provided") as caught:
        await run(provider, ask())
    assert KEY not in caught.value.message
    assert "***" in caught.value.message


async def test_an_error_event_inside_the_stream(
    provider: OpenAIProvider, openai_server: FakeOpenAI
) -> None:
    failure = {"error": {"message": "model overloaded", "type": "server_error"}}
    openai_server.script(Reply(chunks=[chunk({"content": "Hi"}), failure]))
    received, error = await run_until_error(provider, ask())
    assert received == [Token("Hi")]
    assert error.message.endswith("failed: model overloaded")


async def test_a_server_that_never_answers_times_out(openai_server: FakeOpenAI) -> None:
    provider = OpenAIProvider(make_settings(openai_server, provider_timeout=0.3))
    openai_server.script(Reply(stall=5))
    started = time.monotonic()
    with pytest.raises(ProviderTimeoutError, match=r"sent nothing for 0\.3 s"):
        await run(provider, ask())
    assert time.monotonic() - started < 2
    await provider.aclose()


async def test_a_stream_that_stalls_midway_times_out(openai_server: FakeOpenAI) -> None:
    provider = OpenAIProvider(make_settings(openai_server, provider_timeout=0.3))
    openai_server.script(Reply(chunks=text_chunks("a", "b", "c"), stall_after=2, stall=5))
    received, error = await run_until_error(provider, ask())
    assert received == [Token("a")]
    assert isinstance(error, ProviderTimeoutError)
    await provider.aclose()


async def test_model_settings_timeout_overrides_the_setting(
    provider: OpenAIProvider, openai_server: FakeOpenAI
) -> None:
    openai_server.script(Reply(stall=5))
    with pytest.raises(ProviderTimeoutError, match=r"0\.2 s"):
        await run(provider, ask(timeout=0.2))


async def test_an_unreachable_server(openai_server: FakeOpenAI) -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    provider = OpenAIProvider(make_settings(openai_server, openai_base_url=url))
    with pytest.raises(ProviderError, match=f"cannot reach the model provider at {url}"):
        await run(provider, ask())
    await provider.aclose()


# --- where the key comes from -----------------------------------------------------------------


async def test_another_base_url_does_not_get_the_configured_key(
    openai_server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    provider = OpenAIProvider(make_settings(openai_server, openai_base_url="http://elsewhere/v1"))
    await run(provider, ask(base_url=openai_server.base_url))
    assert openai_server.received[-1].headers["authorization"] == "Bearer no-key"
    await provider.aclose()


async def test_api_key_env_names_the_key(
    provider: OpenAIProvider, openai_server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCAL_LLM_API_KEY", "sk-from-env")
    await run(provider, ask(api_key_env="LOCAL_LLM_API_KEY"))
    assert openai_server.received[-1].headers["authorization"] == "Bearer sk-from-env"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"api_key": "sk-in-the-db"}, "api_key is refused"),
        ({"api_key_env": "AGENTKEEP_DATABASE_URL"}, "must name a variable ending in _API_KEY"),
        ({"api_key_env": "UNSET_THING_API_KEY"}, "UNSET_THING_API_KEY, which is not set"),
        ({"base_url": 42}, "base_url must be a string"),
        ({"timeout": "soon"}, "timeout must be a number"),
        ({"timeout": -1}, "timeout must be a number of seconds above 0"),
        ({"extra_body": [1]}, "extra_body must be a JSON object"),
    ],
)
async def test_bad_model_settings_are_refused_before_any_request(
    provider: OpenAIProvider,
    openai_server: FakeOpenAI,
    settings: dict[str, Any],
    message: str,
) -> None:
    with pytest.raises(ProviderError, match=message) as caught:
        await run(provider, ask(**settings))
    assert caught.value.field == f"model_settings.{next(iter(settings))}"
    assert openai_server.received == []
