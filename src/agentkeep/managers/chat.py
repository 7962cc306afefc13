"""A chat turn: the user's message in, the agent's reply streamed out and stored.

A turn is checked before anything streams (the agent and the conversation exist, the input is
valid), so bad input is an ordinary 4xx; then :meth:`Turn.events` does the work and yields
:class:`ChatEvent` s in this order: ``message_start`` (ids), then any of ``thinking``, ``token``,
``tool_call``, ``tool_result``, and last ``message_end`` (message id, status, tokens) or ``error``.

Storage, in as few steps as the work allows, never holding a connection while the model runs:

1. one transaction (one worker-thread hop, one commit): start the conversation if new, store the
   user's message, store the reply as ``streaming``, read the history and the modules;
2. the model streams; each tool call's result is stored as a ``tool`` message as it arrives and
   the model is called again with it (at most ``AGENTKEEP_MAX_TOOL_ROUNDS`` calls);
3. one transaction: the reply finalised as ``complete``, ``error`` (the provider failed; the text
   so far is kept) or ``cancelled`` (the client went away or pressed stop; the partial text is
   kept), with thinking, tool calls, token counts and latency; the agent's token totals and the
   tools' usage counted.

Turns on one conversation run one at a time in this process (a lock per conversation), so two
sends at once keep their order: each user message is followed by its own reply. POST_RESPONSE
modules whose trigger matches run after ``message_end`` (see :meth:`Turn._post_response`).
"""

from __future__ import annotations

import logging
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread
from pydantic import Field as PydanticField

from agentkeep.config import Settings
from agentkeep.errors import AgentkeepError, ValidationError
from agentkeep.managers.agents import AgentInstance, AgentManager
from agentkeep.managers.prompt import build_prompt, history_limits, matching, trim
from agentkeep.managers.tools import ToolRunner
from agentkeep.models.common import Input, Name, Text, Text500, check_json, check_text_size
from agentkeep.models.config import Module
from agentkeep.models.conversation import (
    Conversation,
    ConversationCreate,
    Message,
    MessageCreate,
    MessageUpdate,
)
from agentkeep.models.enums import MessageStatus, Role
from agentkeep.providers import get_provider
from agentkeep.providers.base import (
    ChatMessage,
    CompletionRequest,
    ProviderEvent,
    Thinking,
    Token,
    ToolCall,
    ToolCallRequest,
    ToolSpec,
    Usage,
)
from agentkeep.repositories.base import Async
from agentkeep.repositories.facade import DatabaseManager, Unit

log = logging.getLogger("agentkeep.chat")

_KNOWN_CONVERSATIONS = 10_000
"""Conversations whose agent is remembered, so a turn need not read the conversation first."""


class TurnInput(Input):
    """What the user sends."""

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
class _Prepared:
    conversation: Conversation
    user_message: Message
    reply: Message
    prompt: list[ChatMessage]
    after: list[Module]


@dataclass
class _Reply:
    """What the model has said so far in this turn."""

    text: list[str] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    used_tools: list[uuid.UUID] = field(default_factory=list)
    input_tokens: int | None = None
    output_tokens: int | None = None
    first_token_ms: float | None = None

    def count(self, usage: Usage) -> None:
        self.input_tokens = (self.input_tokens or 0) + usage.input_tokens
        self.output_tokens = (self.output_tokens or 0) + usage.output_tokens


class ChatRuntime:
    """Runs chat turns for one store; one per API process."""

    def __init__(
        self, db: DatabaseManager[Async], agents: AgentManager, settings: Settings
    ) -> None:
        self.db = db
        self.agents = agents
        self.settings = settings
        self.tools = ToolRunner(settings)
        self._agent_of: OrderedDict[uuid.UUID, uuid.UUID] = OrderedDict()
        self._locks: weakref.WeakValueDictionary[uuid.UUID, anyio.Lock] = (
            weakref.WeakValueDictionary()
        )

    async def start(self, data: NewConversation) -> Turn:
        """A turn that starts a conversation; ``NotFoundError`` if the agent does not exist."""
        self._check(data)
        instance = await self.agents.ensure_agent_instance(data.agent_id)
        return Turn(self, instance, None, data)

    async def send(self, conversation_id: uuid.UUID, data: TurnInput) -> Turn:
        """A turn in a conversation; ``NotFoundError`` if it does not exist, ``ValidationError``
        if it has no agent to answer."""
        self._check(data)
        agent_id = self._agent_of.get(conversation_id)
        if agent_id is None:  # a conversation's agent rarely changes: read it once
            conversation = await self.db.conversations.get(conversation_id)
            if conversation.agent_id is None:
                raise ValidationError(
                    "this conversation has no agent to answer; set its agent_id first",
                    field="conversation_id",
                )
            agent_id = self._agent_of[conversation_id] = conversation.agent_id
            if len(self._agent_of) > _KNOWN_CONVERSATIONS:
                self._agent_of.popitem(last=False)
        instance = await self.agents.ensure_agent_instance(agent_id)
        return Turn(self, instance, conversation_id, data)

    def forget(self, conversation_id: uuid.UUID) -> None:
        """The conversation changed (its agent, or it was deleted): read it again next time."""
        self._agent_of.pop(conversation_id, None)

    def _check(self, data: TurnInput) -> None:
        """Refuse what the store would refuse, before anything streams."""
        check_text_size(data.content, self.settings.max_content_bytes, "content")
        check_json(data.metadata, self.settings.max_metadata_bytes, "metadata")

    def lock(self, conversation_id: uuid.UUID) -> anyio.Lock:
        found = self._locks.get(conversation_id)
        if found is None:
            found = self._locks[conversation_id] = anyio.Lock()
        return found

    # -- the two store steps, each one worker-thread hop and one transaction -------------------

    def prepare(
        self,
        db: Unit,
        instance: AgentInstance,
        conversation_id: uuid.UUID | None,
        data: TurnInput,
    ) -> _Prepared:
        agent = instance.agent
        if conversation_id is None:
            assert isinstance(data, NewConversation)
            conversation = db.conversations.create(
                ConversationCreate(
                    agent_id=agent.id, persona_id=agent.persona_id, user_id=data.user_id,
                    chat_id=data.chat_id, title=data.title or data.content[:80],
                )
            )  # fmt: skip
        else:
            conversation = db.conversations.get(conversation_id)
        user = db.messages.append(
            conversation.id,
            MessageCreate(
                role=Role.USER, content=data.content, client_id=data.client_id,
                metadata=data.metadata,
            ),
        )  # fmt: skip
        history = self._history(db, instance, conversation, before=user.seq)
        reply = db.messages.append(
            conversation.id,
            MessageCreate(
                role=Role.ASSISTANT, content="", status=MessageStatus.STREAMING,
                metadata={"provider": instance.provider, "model": instance.model},
            ),
        )  # fmt: skip
        modules, after = self.agents.modules(db)
        prompt = build_prompt(instance, modules, history, data.content)
        return _Prepared(conversation, user, reply, prompt, after)

    def _history(
        self,
        db: Unit,
        instance: AgentInstance,
        conversation: Conversation,
        *,
        before: int,
    ) -> list[Message]:
        agent = instance.agent
        if not agent.include_history:
            return []
        messages, tokens = history_limits(agent.model_settings)
        if messages == 0:
            return []
        limit = min(max(messages * 2, 50), self.settings.max_page_size)  # room for skipped ones
        own = db.messages.list(conversation.id, limit=limit, before=before).items
        earlier: list[Message] = []
        if agent.model_settings.get("history_scope") == "user" and conversation.user_id:
            for past in reversed(
                db.conversations.list(
                    user_id=conversation.user_id, agent_id=agent.id, limit=5
                ).items
            ):
                if past.id != conversation.id:
                    earlier += db.messages.last(past.id, min(messages, 50))
        return trim(earlier + own, messages, tokens)

    def finish(
        self,
        db: Unit,
        instance: AgentInstance,
        reply_id: uuid.UUID,
        update: MessageUpdate,
        used_tools: list[uuid.UUID],
    ) -> Message:
        message = db.messages.update(reply_id, update)
        db.agents.record_tokens(
            instance.agent.id, update.input_tokens or 0, update.output_tokens or 0
        )
        for tool_id in used_tools:
            db.tools.record_use(tool_id)
        return message


class Turn:
    """One turn, checked and ready: iterate :meth:`events` to run it."""

    def __init__(
        self,
        runtime: ChatRuntime,
        instance: AgentInstance,
        conversation_id: uuid.UUID | None,
        data: TurnInput,
    ) -> None:
        self.runtime = runtime
        self.instance = instance
        self.conversation_id = conversation_id
        self.data = data

    async def events(self) -> AsyncGenerator[ChatEvent, None]:
        """Run the turn. Closing this iterator early (the client went away) cancels the turn and
        stores the partial reply as ``cancelled``: close it with ``aclose()`` or ``aclosing``."""
        lock = self.runtime.lock(self.conversation_id) if self.conversation_id else None
        async with _held(lock), aclosing(self._run()) as run:
            async for event in run:
                yield event

    async def _run(self) -> AsyncGenerator[ChatEvent, None]:
        runtime, instance = self.runtime, self.instance
        started = time.perf_counter()
        try:
            prepared = await runtime.db.run(
                lambda uow: runtime.prepare(uow, instance, self.conversation_id, self.data)
            )
        except AgentkeepError as exc:
            yield ChatEvent("error", exc.to_dict())
            return
        yield ChatEvent("message_start", _start_data(prepared, instance))
        reply = _Reply()
        status, failure = MessageStatus.COMPLETE, None
        try:
            async with aclosing(self._model(prepared, reply, started)) as model:
                async for event in model:
                    yield event
        except AgentkeepError as exc:  # the provider failed: keep what it said so far
            status, failure = MessageStatus.ERROR, exc.to_dict()
        except (anyio.get_cancelled_exc_class(), GeneratorExit):  # client gone or stop pressed
            with anyio.CancelScope(shield=True):
                await self._finish(prepared, reply, MessageStatus.CANCELLED, started)
            raise
        except Exception:
            log.exception("chat turn failed")
            status, failure = (
                MessageStatus.ERROR,
                {
                    "code": "internal_error",
                    "message": "the turn failed on the server",
                },
            )
        message = await self._finish(prepared, reply, status, started)
        if failure is not None:
            yield ChatEvent("error", {**failure, "message_id": str(message.id)})
            return
        yield ChatEvent("message_end", _end_data(message))
        await self._post_response(prepared, message)

    async def _model(
        self, prepared: _Prepared, reply: _Reply, started: float
    ) -> AsyncGenerator[ChatEvent, None]:
        """Call the model, run the tools it asks for, call it again; stream what it says."""
        runtime, instance = self.runtime, self.instance
        provider = get_provider(instance.provider, runtime.settings)
        specs = tuple(ToolSpec(t.name, t.description, t.parameters) for t in instance.tools)
        prompt = prepared.prompt
        for _ in range(runtime.settings.max_tool_rounds):
            request = CompletionRequest(
                instance.model, tuple(prompt), specs, dict(instance.agent.model_settings)
            )
            said: list[str] = []
            calls: list[ToolCall] = []
            async with _closing(provider.stream(request)) as stream:
                async for event in stream:
                    shown = _take(event, reply, said, calls, started)
                    if shown is not None:
                        yield shown
            if not calls:
                return
            prompt = [*prompt, ChatMessage("assistant", "".join(said), tool_calls=tuple(calls))]
            for call in calls:
                result_event, result = await self._run_tool(prepared, reply, call)
                yield result_event
                prompt.append(ChatMessage("tool", result, tool_call_id=call.id))

    async def _run_tool(
        self, prepared: _Prepared, reply: _Reply, call: ToolCall
    ) -> tuple[ChatEvent, str]:
        runtime = self.runtime
        result = await runtime.tools.run(self.instance.tools, call)
        tool = next((t for t in self.instance.tools if t.name == call.name), None)
        if tool is not None:
            reply.used_tools.append(tool.id)
        stored = await runtime.db.messages.append(
            prepared.conversation.id,
            MessageCreate(
                role=Role.TOOL,
                content=result.content,
                metadata={"tool_call_id": call.id, "name": call.name, "is_error": result.is_error},
            ),
        )
        reply.calls.append({**_call_data(call), "is_error": result.is_error})
        data = {
            "id": call.id,
            "name": call.name,
            "content": result.content,
            "is_error": result.is_error,
            "message_id": str(stored.id),
        }
        return ChatEvent("tool_result", data), result.content

    async def _finish(
        self, prepared: _Prepared, reply: _Reply, status: MessageStatus, started: float
    ) -> Message:
        metadata = {
            **prepared.reply.metadata,
            "latency_ms": round((time.perf_counter() - started) * 1000, 3),
            "first_token_ms": None
            if reply.first_token_ms is None
            else round(reply.first_token_ms, 3),
        }
        update = MessageUpdate(
            content="".join(reply.text),
            thinking="".join(reply.thinking) or None,
            tool_calls=reply.calls or None,
            input_tokens=reply.input_tokens,
            output_tokens=reply.output_tokens,
            status=status,
            metadata=metadata,
        )
        runtime, instance = self.runtime, self.instance
        return await runtime.db.run(
            lambda uow: runtime.finish(uow, instance, prepared.reply.id, update, reply.used_tools)
        )

    async def _post_response(self, prepared: _Prepared, message: Message) -> None:
        """POST_RESPONSE modules whose trigger matches the exchange: those that need the model
        get one call (their content as instructions, the exchange as input) whose answer is kept
        in the conversation's state (key ``output``, scoped to the module); the others are
        recorded as triggered (key ``triggered``: the reply's id)."""
        exchange = f"User: {self.data.content}\nAssistant: {message.content}"
        runtime = self.runtime
        for module in matching(prepared.after, exchange):
            key, value = "triggered", str(message.id)
            if module.requires_ai_inference:
                key, value = "output", await self._ask(module, exchange)
            try:
                await runtime.db.states.put(
                    prepared.conversation.id, key, value, module_id=module.id
                )
            except AgentkeepError:  # the module or conversation went away meanwhile
                continue

    async def _ask(self, module: Module, exchange: str) -> str:
        instance = self.instance
        provider = get_provider(instance.provider, self.runtime.settings)
        request = CompletionRequest(
            instance.model,
            (ChatMessage("system", module.content or ""), ChatMessage("user", exchange)),
            settings=dict(instance.agent.model_settings),
        )
        try:
            return "".join([e.text async for e in provider.stream(request) if isinstance(e, Token)])
        except AgentkeepError as exc:
            return f"error: {exc.message}"


def _take(
    event: ProviderEvent,
    reply: _Reply,
    said: list[str],
    calls: list[ToolCall],
    started: float,
) -> ChatEvent | None:
    """Record one provider event in the reply; the event to show the client, if any."""
    if isinstance(event, Token):
        if reply.first_token_ms is None:
            reply.first_token_ms = (time.perf_counter() - started) * 1000
        reply.text.append(event.text)  # kept as it arrives: a cancelled reply keeps it too
        said.append(event.text)
        return ChatEvent("token", {"text": event.text})
    if isinstance(event, Thinking):
        reply.thinking.append(event.text)
        return ChatEvent("thinking", {"text": event.text})
    if isinstance(event, ToolCallRequest):
        calls.append(event.call)
        return ChatEvent("tool_call", _call_data(event.call))
    reply.count(event)
    return None


def _start_data(prepared: _Prepared, instance: AgentInstance) -> dict[str, Any]:
    return {
        "conversation_id": str(prepared.conversation.id),
        "user_message_id": str(prepared.user_message.id),
        "message_id": str(prepared.reply.id),
        "agent_id": str(instance.agent.id),
        "provider": instance.provider,
        "model": instance.model,
    }


def _call_data(call: ToolCall) -> dict[str, Any]:
    return {"id": call.id, "name": call.name, "arguments": call.arguments}


@asynccontextmanager
async def _closing(
    stream: AsyncIterator[ProviderEvent],
) -> AsyncIterator[AsyncIterator[ProviderEvent]]:
    """Close a provider's stream however the loop over it ends (its HTTP response with it)."""
    try:
        yield stream
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()


@asynccontextmanager
async def _held(lock: anyio.Lock | None) -> AsyncIterator[None]:
    if lock is None:
        yield
        return
    async with lock:
        yield


def _end_data(message: Message) -> dict[str, Any]:
    return {
        "message_id": str(message.id),
        "status": message.status.value,
        "input_tokens": message.input_tokens,
        "output_tokens": message.output_tokens,
        "latency_ms": message.metadata.get("latency_ms"),
        "first_token_ms": message.metadata.get("first_token_ms"),
    }
