"""The ``openai`` provider against a real OpenAI-compatible HTTP server on loopback, through the
real SDK: streamed content, reasoning, tool calls in pieces, usage, the request it sends, and the
pooled clients."""

from __future__ import annotations

from contextlib import aclosing

import anyio
import pytest

from agentkeep.providers import (
    ChatMessage,
    CompletionRequest,
    Provider,
    Thinking,
    Token,
    ToolCall,
    ToolCallRequest,
    ToolSpec,
    Usage,
)
from agentkeep.providers.openai import OpenAIProvider, resolve_endpoint
from providers.fake_openai import (
    FakeOpenAI,
    Reply,
    chunk,
    text_chunks,
    tool_delta,
    usage_chunk,
)
from providers.helpers import KEY, WEATHER, ask, make_settings, run

pytestmark = pytest.mark.anyio


def test_is_a_provider(openai_server: FakeOpenAI) -> None:
    assert isinstance(OpenAIProvider(make_settings(openai_server)), Provider)


async def test_streams_content_then_usage(
    provider: OpenAIProvider, openai_server: FakeOpenAI
) -> None:
    openai_server.script(Reply(chunks=[*text_chunks("Hel", "lo", " world"), usage_chunk(12, 3)]))
    events = await run(provider, ask(temperature=0.3, top_p=0.9, max_tokens=64, thinking=True))
    assert events == [Token("Hel"), Token("lo"), Token(" world"), Usage(12, 3)]

    [received] = openai_server.received
    assert received.headers["authorization"] == f"Bearer {KEY}"
    body = received.body
    assert body["model"] == "gpt-test"
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
    ]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.3, 0.9, 64)
    assert "tools" not in body  # none offered: no empty list either
    assert "thinking" not in body  # another provider's option is not sent


async def test_model_comes_from_the_agent_then_model_settings_then_settings(
    provider: OpenAIProvider, openai_server: FakeOpenAI
) -> None:
    user = (ChatMessage("user", "hi"),)
    await run(provider, CompletionRequest("", user, settings={"model": "from-model-settings"}))
    await run(provider, CompletionRequest("", user))
    assert [r.body["model"] for r in openai_server.received] == [
        "from-model-settings",
        "default-model",
    ]


async def test_extra_body_is_merged_into_the_request(
    provider: OpenAIProvider, openai_server: FakeOpenAI
) -> None:
    await run(provider, ask(extra_body={"top_k": 5, "repeat_penalty": 1.1}))
    assert (openai_server.last["top_k"], openai_server.last["repeat_penalty"]) == (5, 1.1)


async def test_reasoning_becomes_thinking(
    provider: OpenAIProvider, openai_server: FakeOpenAI
) -> None:
    chunks = [
        chunk({"role": "assistant", "reasoning_content": "Let me"}),  # vLLM, llama.cpp
        chunk({"reasoning": " think."}),  # Ollama, OpenRouter
        *text_chunks("Done."),
    ]
    openai_server.script(Reply(chunks=chunks))
    events = await run(provider, ask())
    assert events == [Thinking("Let me"), Thinking(" think."), Token("Done.")]


async def test_a_refusal_is_the_reply(provider: OpenAIProvider, openai_server: FakeOpenAI) -> None:
    chunks = [chunk({"role": "assistant", "refusal": "I can't"}), chunk({"refusal": " help."})]
    openai_server.script(Reply(chunks=chunks))
    assert await run(provider, ask()) == [Token("I can't"), Token(" help.")]


async def test_a_tool_call_in_pieces_becomes_one_request(
    provider: OpenAIProvider, openai_server: FakeOpenAI
) -> None:
    chunks = [
        chunk({"role": "assistant", "content": None}),
        tool_delta(0, call_id="call_abc", name="get_weather"),
        tool_delta(0, arguments='{"ci'),
        tool_delta(0, arguments='ty": "Par'),
        tool_delta(0, arguments='is"}'),
        chunk({}, finish_reason="tool_calls"),
        usage_chunk(40, 9),
    ]
    openai_server.script(Reply(chunks=chunks))
    events = await run(provider, ask("weather in Paris?", tools=(WEATHER,)))
    call = ToolCall("call_abc", "get_weather", {"city": "Paris"})
    assert events == [ToolCallRequest(call), Usage(40, 9)]
    assert openai_server.last["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city",
                "parameters": WEATHER.parameters,
            },
        }
    ]


async def test_parallel_tool_calls_arrive_in_index_order(
    provider: OpenAIProvider, openai_server: FakeOpenAI
) -> None:
    chunks = [
        chunk({"role": "assistant", "content": "Checking both."}),
        tool_delta(0, call_id="call_a", name="get_weather", arguments='{"city":'),
        tool_delta(1, call_id="call_b", name="get_weather", arguments='{"city": "Oslo"'),
        tool_delta(0, arguments=' "Rome"}'),
        tool_delta(1, arguments="}"),
        tool_delta(2, name="now"),  # no id (some servers), no arguments
        chunk({}, finish_reason="tool_calls"),
    ]
    openai_server.script(Reply(chunks=chunks))
    events = await run(provider, ask(tools=(WEATHER, ToolSpec("now"))))
    assert events == [
        Token("Checking both."),
        ToolCallRequest(ToolCall("call_a", "get_weather", {"city": "Rome"})),
        ToolCallRequest(ToolCall("call_b", "get_weather", {"city": "Oslo"})),
        ToolCallRequest(ToolCall("call_3", "now", {})),
    ]
    assert openai_server.last["tools"][1] == {
        "type": "function",
        "function": {"name": "now", "parameters": {"type": "object"}},
    }


async def test_history_with_tool_calls_and_results_is_sent_in_the_chat_shape(
    provider: OpenAIProvider, openai_server: FakeOpenAI
) -> None:
    call = ToolCall("call_abc", "get_weather", {"city": "Paris"})
    messages = (
        ChatMessage("system", "Be brief."),
        ChatMessage("user", "weather in Paris?"),
        ChatMessage("assistant", "", tool_calls=(call,)),
        ChatMessage("tool", '{"temp": 21}', tool_call_id="call_abc"),
    )
    await run(provider, CompletionRequest("gpt-test", messages, tools=(WEATHER,)))
    assert openai_server.last["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "weather in Paris?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_abc",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_abc", "content": '{"temp": 21}'},
    ]


async def test_no_usage_chunk_means_no_usage_event(
    provider: OpenAIProvider, openai_server: FakeOpenAI
) -> None:
    openai_server.script(Reply(chunks=text_chunks("ok")))
    assert await run(provider, ask()) == [Token("ok")]


async def test_stopping_early_closes_the_response(
    provider: OpenAIProvider, openai_server: FakeOpenAI
) -> None:
    pieces = [f"w{i} " for i in range(50)]
    openai_server.script(Reply(chunks=text_chunks(*pieces), chunk_delay=0.05))
    async with aclosing(provider.stream(ask())) as events:
        async for event in events:
            assert event == Token("w0 ")
            break
    with anyio.fail_after(3):
        while openai_server.streams_cut == 0:
            await anyio.sleep(0.02)
    # the pooled client still works afterwards
    openai_server.script(Reply(chunks=text_chunks("again")))
    assert await run(provider, ask()) == [Token("again")]


async def test_one_client_per_endpoint_reused_and_closed(
    provider: OpenAIProvider, openai_server: FakeOpenAI
) -> None:
    endpoint = resolve_endpoint(ask(), provider.settings)
    await run(provider, ask())
    client = provider.client(endpoint)
    await run(provider, ask(temperature=1.0))
    assert provider.client(endpoint) is client
    other = resolve_endpoint(ask(base_url="http://127.0.0.1:9/v1"), provider.settings)
    assert provider.client(other) is not client
    await provider.aclose()
    assert client.is_closed()
    assert provider.client(endpoint) is not client  # a fresh one after closing


def test_a_client_left_by_a_finished_event_loop_is_dropped_quietly(
    openai_server: FakeOpenAI,
) -> None:
    """A pooled client whose event loop has ended is forgotten; garbage-collected while
    another loop runs, it must not try to close its connection there (the loop it belongs to is
    closed: that failed in whatever ran at the time)."""
    import asyncio
    import gc

    provider = OpenAIProvider(make_settings(openai_server))

    async def first() -> None:
        openai_server.script(Reply(chunks=[*text_chunks("hi"), usage_chunk(1, 1)]))
        assert await run(provider, ask()) == [Token("hi"), Usage(1, 1)]  # a pooled connection

    asyncio.run(first())
    failures: list[dict[str, object]] = []

    async def later() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: failures.append(ctx))
        await provider.aclose()  # forgets the client of the finished loop
        gc.collect()
        await asyncio.sleep(0.05)  # whatever the collection scheduled has run

    asyncio.run(later())
    assert failures == []
