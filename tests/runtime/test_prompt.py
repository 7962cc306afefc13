"""How a turn's prompt is built from persona, modules and history."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest

from agentkeep import Agent, Message, Module, Persona, ValidationError
from agentkeep.managers.agents import AgentInstance
from agentkeep.managers.prompt import (
    build_prompt,
    from_history,
    history_limits,
    triggered,
    trim,
)
from agentkeep.models.enums import ExecutionContext
from agentkeep.providers.base import ChatMessage, ToolCall

NOW = datetime.now(UTC)


def message(seq: int, role: str, content: str, **fields: Any) -> Message:
    return Message(
        id=uuid.uuid4(), conversation_id=uuid.uuid4(), seq=seq, role=role, content=content,
        created_at=NOW, updated_at=NOW, **fields,
    )  # fmt: skip


def module(name: str, pattern: str | None, content: str) -> Module:
    return Module(
        id=uuid.uuid4(), name=name, type="t", trigger_pattern=pattern, content=content,
        execution_context=ExecutionContext.IMMEDIATE, created_at=NOW, updated_at=NOW,
    )  # fmt: skip


def instance(persona: Persona | None = None, **settings: Any) -> AgentInstance:
    agent = Agent(
        id=uuid.uuid4(), name="helper", description="Helps.", model_settings=settings,
        created_at=NOW, updated_at=NOW,
    )  # fmt: skip
    return AgentInstance(agent, persona, (), "echo", "echo-1", 0.0)


@pytest.mark.anyio
async def test_system_prompt_is_the_persona_then_matching_modules_in_order() -> None:
    persona = Persona(
        id=uuid.uuid4(), name="p", template="You are patient.", first_message="Hi!",
        created_at=NOW, updated_at=NOW,
    )  # fmt: skip
    modules = [module("a", "(?i)refund", "Refunds: 30 days."), module("b", "shipping", "No.")]
    modules.append(module("c", None, "Always polite."))
    chosen = await triggered(modules, "I want a REFUND")
    assert chosen.failures == []
    prompt = build_prompt(instance(persona), chosen.modules, [], "I want a REFUND")
    assert prompt == [
        ChatMessage("system", "You are patient.\n\nRefunds: 30 days.\n\nAlways polite."),
        ChatMessage("assistant", "Hi!"),  # the conversation is shown from its start
        ChatMessage("user", "I want a REFUND"),
    ]


def test_without_a_persona_the_agent_is_named() -> None:
    prompt = build_prompt(instance(), [], [message(5, "user", "old")], "new")
    assert prompt[0] == ChatMessage("system", "You are helper. Helps.")
    assert prompt[1:] == [ChatMessage("user", "old"), ChatMessage("user", "new")]


def test_history_limits_by_messages_and_tokens_and_skips_failed_replies() -> None:
    history = [message(i, "user", "x" * 40) for i in range(1, 11)]
    history.insert(5, message(99, "assistant", "broken", status="error"))
    assert [m.seq for m in trim(history, 3, None)] == [8, 9, 10]
    assert [m.seq for m in trim(history, 20, 25)] == [9, 10]  # 25 tokens ~ 100 characters
    assert trim(history, 0, None) == []
    assert history_limits({"history_messages": 4, "history_tokens": 9}) == (4, 9)
    assert history_limits({}) == (20, None)
    assert history_limits({"history_messages": None, "history_scope": "user"}) == (20, None)


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"history_messages": "lots"}, "history_messages"),
        ({"history_messages": -1}, "history_messages"),
        ({"history_tokens": 1.5}, "history_tokens"),
        ({"history_scope": "galaxy"}, "history_scope"),
    ],
)
def test_history_settings_a_turn_cannot_read_are_refused_not_replaced_by_defaults(
    settings: dict[str, Any], field: str
) -> None:
    # an agent stored before its settings were checked: the turn says what is wrong
    with pytest.raises(ValidationError) as caught:
        history_limits(settings)
    assert caught.value.field == f"model_settings.{field}"


def test_a_reply_that_called_tools_is_rebuilt_as_the_model_saw_it() -> None:
    calls = [{"id": "c1", "name": "current_time", "arguments": {"timezone": "UTC"}}]
    history = [
        message(1, "user", "time?"),
        message(2, "assistant", "It is noon.", tool_calls=calls),
        message(3, "tool", '{"iso": "12:00"}', metadata={"tool_call_id": "c1"}),
        message(4, "user", "thanks"),
    ]
    assert from_history(history) == [
        ChatMessage("user", "time?"),
        ChatMessage(
            "assistant", "", tool_calls=(ToolCall("c1", "current_time", {"timezone": "UTC"}),)
        ),
        ChatMessage("tool", '{"iso": "12:00"}', tool_call_id="c1"),
        ChatMessage("assistant", "It is noon."),
        ChatMessage("user", "thanks"),
    ]
    # a result whose call was trimmed away is dropped rather than shown on its own
    assert from_history(history[2:]) == [ChatMessage("user", "thanks")]


@pytest.mark.anyio
async def test_modules_without_a_trigger_always_match() -> None:
    always, never = module("a", None, "x"), module("b", "zzz", "y")
    assert (await triggered([always, never], "hello")).modules == [always]
    assert (await triggered([always], "hello")).modules == [always]  # no thread needed


RUNAWAY = "(a|a)+$"
"""Backtracks without end on a run of ``a`` that does not end the text."""


@pytest.mark.anyio
async def test_a_runaway_trigger_times_out_and_its_module_is_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    modules = [
        module("slow", RUNAWAY, "never shown"),
        module("refunds", "(?i)refund", "Refunds: 30 days."),
        module("always", None, "Always polite."),
    ]
    text = "a" * 30 + "! REFUND"
    with caplog.at_level(logging.WARNING, "agentkeep.chat"):
        started = time.monotonic()
        chosen = await triggered(modules, text, timeout=0.05)
        elapsed = time.monotonic() - started
    assert elapsed < 5  # bounded by the time limit, not by the pattern (which would run for ages)
    assert [m.name for m in chosen.modules] == ["refunds", "always"]
    [failure] = chosen.failures
    assert failure.to_dict()["code"] == "trigger_timeout"
    assert failure.module == "slow"
    assert "'slow'" in failure.message
    assert any("'slow'" in r.getMessage() for r in caplog.records)


@pytest.mark.anyio
async def test_the_classic_catastrophic_pattern_is_answered_at_once() -> None:
    chosen = await triggered([module("nested", "(a+)+$", "x")], "a" * 30 + "!", timeout=1)
    assert chosen.modules == []
    assert chosen.failures == []


@pytest.mark.anyio
async def test_a_runaway_trigger_does_not_block_the_event_loop() -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.01)
            ticks += 1

    async with anyio.create_task_group() as group:
        group.start_soon(tick)
        chosen = await triggered([module("slow", RUNAWAY, "x")], "a" * 40 + "!", timeout=0.5)
        group.cancel_scope.cancel()
    assert chosen.failures[0].code == "trigger_timeout"
    assert ticks >= 10  # the loop ran other tasks throughout (about 50 ticks if it never waited)


@pytest.mark.anyio
async def test_a_stored_pattern_that_does_not_compile_is_reported_not_raised() -> None:
    stored = [
        module("broken", "(unclosed", "x"),
        module("huge", "((a{1000}){1000}){1000}", "x"),  # unrolled, it would take gigabytes
        module("ok", "", "y"),
    ]
    chosen = await triggered(stored, "hi")
    assert [m.name for m in chosen.modules] == ["ok"]
    assert [(f.code, f.module) for f in chosen.failures] == [
        ("trigger_invalid", "broken"),
        ("trigger_invalid", "huge"),
    ]
    assert "repeats too much" in chosen.failures[1].message
