"""The offline echo model: deterministic text, word-by-word streaming, usage, thinking, a tool
call round trip, pacing and the failure options."""

from __future__ import annotations

import itertools
from typing import Any

import anyio
import pytest

from agentkeep.providers import (
    ChatMessage,
    CompletionRequest,
    Provider,
    ProviderError,
    ProviderEvent,
    Thinking,
    Token,
    ToolCall,
    ToolCallRequest,
    ToolSpec,
    Usage,
)
from agentkeep.providers.echo import EchoProvider

pytestmark = pytest.mark.anyio

CLOCK = ToolSpec("current_time", "The current time", {"type": "object", "properties": {}})


def request(
    *messages: ChatMessage, tools: tuple[ToolSpec, ...] = (), **settings: Any
) -> CompletionRequest:
    return CompletionRequest(model="echo", messages=messages, tools=tools, settings=settings)


def user(text: str) -> ChatMessage:
    return ChatMessage(role="user", content=text)


async def events(req: CompletionRequest) -> list[ProviderEvent]:
    return [event async for event in EchoProvider().stream(req)]


def text(items: list[ProviderEvent]) -> str:
    return "".join(event.text for event in items if isinstance(event, Token))


def thinking(items: list[ProviderEvent]) -> str:
    return "".join(event.text for event in items if isinstance(event, Thinking))


def test_is_a_provider() -> None:
    assert isinstance(EchoProvider(), Provider)
    assert EchoProvider().name == "echo"


async def test_reply_says_it_is_the_offline_model_and_echoes_the_user() -> None:
    got = await events(request(ChatMessage("system", "Be brief."), user("Bought  coffee\nfor 300")))
    assert text(got) == "(echo, the offline model) You said: Bought  coffee\nfor 300"
    assert got == await events(
        request(ChatMessage("system", "Be brief."), user("Bought  coffee\nfor 300"))
    )


async def test_streams_word_by_word_then_usage() -> None:
    got = await events(request(ChatMessage("system", "Be brief."), user("hello there")))
    tokens = [event.text for event in got if isinstance(event, Token)]
    assert tokens == ["(echo, ", "the ", "offline ", "model) ", "You ", "said: ", "hello ", "there"]
    # input: every word of the prompt (2 + 2); output: one per token; usage comes last
    assert got[-1] == Usage(input_tokens=4, output_tokens=len(tokens))
    assert not any(isinstance(event, Thinking | ToolCallRequest) for event in got)


async def test_echoes_the_last_user_message() -> None:
    history = (user("first"), ChatMessage("assistant", "(echo) first"), user("second"))
    assert text(await events(request(*history))).endswith("You said: second")


async def test_empty_prompt_still_answers() -> None:
    assert text(await events(request())) == "(echo, the offline model) You said nothing."


async def test_thinking_comes_first_when_asked() -> None:
    got = await events(request(user("one two three"), thinking=True))
    assert thinking(got) == "The user wrote 3 words; I will repeat them."
    first_token = next(i for i, event in enumerate(got) if isinstance(event, Token))
    assert all(isinstance(event, Thinking) for event in got[:first_token])
    # thinking is not counted as output
    assert got[-1] == Usage(3, sum(isinstance(event, Token) for event in got))


async def test_tool_call_round_trip() -> None:
    config = {"tool_call": {"name": "current_time", "arguments": {"zone": "UTC"}}}
    first = await events(request(user("what time is it"), tools=(CLOCK,), **config))
    call = ToolCall(id="call_1", name="current_time", arguments={"zone": "UTC"})
    assert first == [ToolCallRequest(call), Usage(input_tokens=4, output_tokens=0)]

    prompt = (
        user("what time is it"),
        ChatMessage("assistant", "", tool_calls=(call,)),
        ChatMessage("tool", "12:00 UTC", tool_call_id="call_1"),
    )
    second = await events(request(*prompt, tools=(CLOCK,), **config))
    assert text(second) == (
        "(echo, the offline model) You said: what time is it "
        "The tool current_time returned: 12:00 UTC"
    )
    assert not any(isinstance(event, ToolCallRequest) for event in second)


async def test_tool_call_by_name_and_with_thinking() -> None:
    got = await events(
        request(user("time?"), tools=(CLOCK,), tool_call="current_time", thinking=True)
    )
    assert thinking(got) == "The user wrote 1 word; I will call the tool current_time first."
    assert ToolCallRequest(ToolCall("call_1", "current_time", {})) in got
    assert text(got) == ""


async def test_tool_call_only_when_the_tool_is_offered() -> None:
    got = await events(request(user("time?"), tool_call="current_time"))
    assert not any(isinstance(event, ToolCallRequest) for event in got)
    assert text(got) == "(echo, the offline model) You said: time?"


async def test_token_delay_spreads_tokens_in_time() -> None:
    arrivals: list[float] = []
    async for event in EchoProvider().stream(request(user("a b c"), token_delay_ms=30)):
        if isinstance(event, Token):
            arrivals.append(anyio.current_time())
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert len(gaps) == 8
    assert all(gap >= 0.025 for gap in gaps)


async def test_a_stream_can_be_stopped_midway() -> None:
    received: list[str] = []
    with anyio.move_on_after(0.1):
        async for event in EchoProvider().stream(request(user("a b c d e f"), token_delay_ms=40)):
            if isinstance(event, Token):
                received.append(event.text)
    assert 1 <= len(received) < 12


async def test_fail_raises_a_provider_error() -> None:
    with pytest.raises(ProviderError, match="the model is down"):
        await events(request(user("hi"), fail="the model is down"))


async def collect_until_error(req: CompletionRequest) -> tuple[list[ProviderEvent], Exception]:
    received: list[ProviderEvent] = []
    try:
        async for event in EchoProvider().stream(req):
            received.append(event)
    except ProviderError as exc:
        return received, exc
    raise AssertionError("the stream did not fail")


async def test_fail_after_tokens_streams_first() -> None:
    received, error = await collect_until_error(
        request(user("hi there"), fail="cut off", fail_after_tokens=4)
    )
    assert text(received) == "(echo, the offline model) "
    assert str(error) == "cut off"


async def test_fail_after_more_tokens_than_the_reply_fails_at_its_end() -> None:
    received, error = await collect_until_error(
        request(user("hi"), fail="cut off", fail_after_tokens=100)
    )
    assert text(received) == "(echo, the offline model) You said: hi"
    assert not any(isinstance(event, Usage) for event in received)
    assert str(error) == "cut off"


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("thinking", "yes"),
        ("token_delay_ms", "fast"),
        ("token_delay_ms", -1),
        ("token_delay_ms", True),
        ("fail", 3),
        ("fail_after_tokens", 1.5),
        ("tool_call", {"arguments": {}}),
        ("tool_call", {"name": "t", "arguments": "x=1"}),
        ("tool_call", 7),
    ],
)
async def test_options_of_the_wrong_type_are_refused(option: str, value: object) -> None:
    with pytest.raises(ProviderError, match=option) as caught:
        await events(CompletionRequest("echo", (user("hi"),), settings={option: value}))
    assert caught.value.field == f"model_settings.{option}"


async def test_options_for_other_providers_are_ignored() -> None:
    got = await events(request(user("hi"), temperature=0.2, base_url="http://x"))
    assert text(got) == "(echo, the offline model) You said: hi"
