"""LangChain's chat history kept as an agentkeep conversation, on every backend: each message
type reads back unchanged, the columns carry roles, tool calls and tokens, clear empties it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from agentkeep import Async, ConversationCreate, DatabaseManager, Sync, ValidationError
from agentkeep.integrations.langchain import AgentkeepChatMessageHistory
from agentkeep.models.conversation import MessageCreate
from agentkeep.models.enums import Role


def every_kind() -> list[BaseMessage]:
    return [
        SystemMessage("be brief", id="sys-1"),
        HumanMessage("hi", name="bob", additional_kwargs={"lang": "en"}, id="h-1"),
        AIMessage(
            "",
            tool_calls=[{"id": "call-1", "name": "add", "args": {"a": 1, "b": 2}}],
            usage_metadata={"input_tokens": 3, "output_tokens": 4, "total_tokens": 7},
            response_metadata={"model_name": "echo"},
            id="a-1",
        ),
        ToolMessage("3", tool_call_id="call-1", name="add", artifact={"raw": [3]}, id="t-1"),
        ChatMessage(content="looks fine", role="critic", id="c-1"),
        HumanMessage(
            [{"type": "text", "text": "see "}, {"type": "image_url", "image_url": {"url": "x"}}]
        ),
        FunctionMessage(content="42", name="answer"),
        AIMessage("Привет, 300 рублей", additional_kwargs={"refusal": None}),
    ]


class TestChatMessageHistory:
    def test_every_message_type_round_trips_unchanged(self, db: DatabaseManager[Sync]) -> None:
        history = AgentkeepChatMessageHistory(db, "session-1")
        sent = every_kind()
        history.add_messages(sent)
        assert history.messages == sent
        assert AgentkeepChatMessageHistory(db, "session-1").messages == sent

    def test_the_conversation_shows_roles_tool_calls_and_tokens(
        self, db: DatabaseManager[Sync]
    ) -> None:
        AgentkeepChatMessageHistory(db, "session-2").add_messages(every_kind())
        conversation = db.conversations.list().items[0]
        assert (conversation.user_id, conversation.chat_id) == ("langchain", "session-2")
        assert conversation.external_ref is None  # left for the operation a workflow completes
        assert (conversation.input_tokens, conversation.output_tokens) == (3, 4)
        stored = db.messages.last(conversation.id)
        assert [m.role for m in stored] == [
            Role.SYSTEM, Role.USER, Role.ASSISTANT, Role.TOOL, Role.USER, Role.USER, Role.TOOL,
            Role.ASSISTANT,
        ]  # fmt: skip
        assert stored[2].tool_calls is not None
        call: Any = stored[2].tool_calls[0]
        assert (call.id, call.name, call.arguments) == ("call-1", "add", {"a": 1, "b": 2})
        assert stored[3].metadata["tool_call_id"] == "call-1"
        assert stored[5].content == "see "

    def test_sessions_are_kept_apart_and_clear_empties_one(self, db: DatabaseManager[Sync]) -> None:
        one = AgentkeepChatMessageHistory(db, "one")
        two = AgentkeepChatMessageHistory(db, "two")
        one.add_message(HumanMessage("for one"))
        two.add_message(HumanMessage("for two"))
        one.clear()
        assert one.messages == []
        assert [m.content for m in two.messages] == ["for two"]
        one.add_message(HumanMessage("again"))
        assert [m.content for m in one.messages] == ["again"]
        assert db.conversations.count() == 2

    def test_a_conversation_id_names_that_conversation(self, db: DatabaseManager[Sync]) -> None:
        cid = db.conversations.create(ConversationCreate(user_id="u1")).id
        db.messages.append(cid, MessageCreate(role=Role.USER, content="from the API"))
        db.messages.append(cid, MessageCreate(role=Role.ASSISTANT, content="hello"))
        history = AgentkeepChatMessageHistory(db, str(cid))
        assert [(type(m), m.content) for m in history.messages] == [
            (HumanMessage, "from the API"),
            (AIMessage, "hello"),
        ]
        history.add_message(AIMessage("from langchain"))
        assert db.conversations.get(cid).message_count == 3

    def test_an_unknown_session_reads_empty_and_creates_nothing(
        self, db: DatabaseManager[Sync]
    ) -> None:
        assert AgentkeepChatMessageHistory(db, str(uuid.uuid4())).messages == []
        assert db.conversations.count() == 0

    def test_a_session_id_too_long_is_refused(self, db: DatabaseManager[Sync]) -> None:
        with pytest.raises(ValidationError) as refused:
            AgentkeepChatMessageHistory(db, "x" * 300)
        assert refused.value.field == "session_id"
        assert "session_id" in str(refused.value)

    @pytest.mark.anyio
    async def test_the_async_methods_do_the_same(self, adb: DatabaseManager[Async]) -> None:
        history = AgentkeepChatMessageHistory(adb, "async-session")
        sent = every_kind()
        await history.aadd_messages(sent)
        assert await history.aget_messages() == sent
        assert history.messages == sent  # the sync face of the same store
        await history.aclear()
        assert await history.aget_messages() == []
