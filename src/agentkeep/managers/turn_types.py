"""What a chat turn takes in, what it streams out, and what it carries between its steps.

``TurnInput`` / ``NewConversation`` are what a client sends; ``ChatEvent`` is one streamed event.
``Prepared`` is what the first store step hands the turn (a new reply stored as ``streaming``);
``Answered`` is what it hands back instead for a retried send whose first reply already exists;
``Draft`` collects what the model says until the reply is finalised.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field as PydanticField

from agentkeep.managers.agents import AgentInstance
from agentkeep.models.common import Input, Name, Text, Text500
from agentkeep.models.config import Module
from agentkeep.models.conversation import Conversation, Message, MessageUpdate
from agentkeep.models.enums import MessageStatus
from agentkeep.models.memory import MemoryHit
from agentkeep.providers.base import ToolCall, Usage


class TurnInput(Input):
    """What the user sends. A ``client_id`` makes a retried send return the first reply."""

    content: Text
    client_id: Name | None = None
    metadata: dict[str, Any] = PydanticField(default_factory=dict)


class NewConversation(TurnInput):
    """A first message that starts a conversation with an agent."""

    agent_id: uuid.UUID
    user_id: Name | None = None
    chat_id: Name | None = None
    title: Text500 | None = None


@dataclass(frozen=True, slots=True)
class ChatEvent:
    event: str
    data: dict[str, Any]


@dataclass
class Prepared:
    """A new turn: its messages are stored (the reply as ``streaming``), its context read."""

    conversation: Conversation
    user_message: Message
    reply: Message
    history: list[Message]
    modules: list[Module]
    """IMMEDIATE modules (they shape the prompt)."""
    after: list[Module]
    """POST_RESPONSE modules (they run once the reply is stored)."""
    on_demand: list[Module] = field(default_factory=list)
    """ON_DEMAND modules (the model may run them with the ``run_module`` tool)."""
    memories: list[MemoryHit] = field(default_factory=list)
    """The memories recalled for the prompt, best first (``managers.turn_memory``)."""
    warnings: list[dict[str, str]] = field(default_factory=list)
    """What the turn goes on without, found while preparing it (e.g. its memories)."""


@dataclass
class Answered:
    """A retried send: the user message was stored before, and this reply answered it."""

    conversation: Conversation
    user_message: Message
    reply: Message


@dataclass
class Draft:
    """What the model has said so far in this turn, and how the turn is going."""

    started: float = field(default_factory=time.perf_counter)
    text: list[str] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    used_tools: list[uuid.UUID] = field(default_factory=list)
    input_tokens: int | None = None
    output_tokens: int | None = None
    first_token_ms: float | None = None
    status: MessageStatus = MessageStatus.CANCELLED
    """Until the turn says otherwise, an interrupted turn is a cancelled one."""
    failure: dict[str, Any] | None = None
    """The ``error`` event's data when the turn failed."""
    tool_rounds_exhausted: bool = False
    """The model used every tool round and was asked to answer without tools."""
    warnings: list[dict[str, str]] = field(default_factory=list)
    """What the turn did without, e.g. a module whose trigger timed out (``code``, ``message``)."""

    def count(self, usage: Usage) -> None:
        self.input_tokens = (self.input_tokens or 0) + usage.input_tokens
        self.output_tokens = (self.output_tokens or 0) + usage.output_tokens

    def fail(self, code: str, message: str) -> None:
        self.status, self.failure = MessageStatus.ERROR, {"code": code, "message": message}

    def update(self, reply: Message) -> MessageUpdate:
        """The reply's final form: what was said, how long it took, how it ended."""
        metadata: dict[str, Any] = {
            **reply.metadata,
            "latency_ms": round((time.perf_counter() - self.started) * 1000, 3),
            "first_token_ms": None
            if self.first_token_ms is None
            else round(self.first_token_ms, 3),
        }
        if self.tool_rounds_exhausted:
            metadata["tool_rounds_exhausted"] = True
        if self.warnings:
            metadata["warnings"] = self.warnings
        if self.failure is not None:  # kept, so a retried send can say it again
            metadata["error"], metadata["error_code"] = (
                self.failure["message"],
                self.failure["code"],
            )
        return MessageUpdate(
            content="".join(self.text),
            thinking="".join(self.thinking) or None,
            tool_calls=self.calls or None,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            status=self.status,
            metadata=metadata,
        )


def start_data(
    conversation: Conversation, user: Message, reply: Message, instance: AgentInstance
) -> dict[str, Any]:
    return {
        "conversation_id": str(conversation.id),
        "user_message_id": str(user.id),
        "message_id": str(reply.id),
        "agent_id": str(instance.agent.id),
        "provider": reply.metadata.get("provider", instance.provider),
        "model": reply.metadata.get("model", instance.model),
    }


def end_data(message: Message) -> dict[str, Any]:
    data = {
        "message_id": str(message.id),
        "status": message.status.value,
        "input_tokens": message.input_tokens,
        "output_tokens": message.output_tokens,
        "latency_ms": message.metadata.get("latency_ms"),
        "first_token_ms": message.metadata.get("first_token_ms"),
    }
    for key in ("memories", "warnings"):  # the memories recalled; what the turn did without
        if message.metadata.get(key):
            data[key] = message.metadata[key]
    return data


def error_data(message: Message) -> dict[str, Any]:
    """The ``error`` event that ended the turn which stored ``message`` as ``error``."""
    return {
        "code": message.metadata.get("error_code", "internal_error"),
        "message": message.metadata.get("error", "the turn failed on the server"),
        "message_id": str(message.id),
    }


def call_data(call: ToolCall) -> dict[str, Any]:
    return {"id": call.id, "name": call.name, "arguments": call.arguments}
