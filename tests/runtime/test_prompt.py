"""How a turn's prompt is built from persona, modules and history."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from agentkeep import Agent, Message, Module, Persona
from agentkeep.managers.agents import AgentInstance
from agentkeep.managers.prompt import build_prompt, from_history, history_limits, matching, trim
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


def test_system_prompt_is_the_persona_then_matching_modules_in_order() -> None:
    persona = Persona(
        id=uuid.uuid4(), name="p", template="You are patient.", first_message="Hi!",
        created_at=NOW, updated_at=NOW,
    )  # fmt: skip
    modules = [module("a", "(?i)refund", "Refunds: 30 days."), module("b", "shipping", "No.")]
    modules.append(module("c", None, "Always polite."))
    prompt = build_prompt(instance(persona), modules, [], "I want a REFUND")
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
    assert history_limits({"history_messages": "lots"}) == (20, None)


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


def test_modules_without_a_trigger_always_match() -> None:
    always, never = module("a", None, "x"), module("b", "zzz", "y")
    assert matching([always, never], "hello") == [always]
