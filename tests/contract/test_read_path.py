"""Contract: the hot reads (message pages, last-N, history, a user's conversations) return
models identical to ``Model.model_validate`` of the same rows read through SQLAlchemy's typed
columns, on every backend, odd stored values included."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import insert, select, update

from agentkeep import (
    AgentCreate,
    ConversationCreate,
    DatabaseManager,
    MessageCreate,
    Sync,
)
from agentkeep.db.tables import conversations, messages
from agentkeep.db.types import new_id
from agentkeep.models.common import MAX_JSON_DEPTH, TOO_DEEP
from agentkeep.models.conversation import Conversation, Message, ToolCallRecord
from agentkeep.models.enums import MessageStatus, Role


def _deep(levels: int) -> dict[str, Any]:
    document: dict[str, Any] = {"leaf": True}
    for _ in range(levels - 1):
        document = {"a": document}
    return document


def _reference(db: DatabaseManager[Sync], model: type[BaseModel], query: Any) -> list[Any]:
    """The rows as the typed columns decode them, validated as the models were before."""
    with db.service.unit("read") as conn:
        return [
            model.model_validate(dict(zip(row._fields, row, strict=True)))
            for row in conn.execute(query).all()
        ]


def _assert_identical(got: list[Any], expected: list[Any]) -> None:
    assert got == expected
    for a, b in zip(got, expected, strict=True):
        assert type(a) is type(b)
        assert a.model_fields_set == b.model_fields_set
        assert a.model_dump() == b.model_dump()
        assert a.model_dump_json() == b.model_dump_json()
        assert repr(a) == repr(b)
        for name in type(a).model_fields:
            x, y = getattr(a, name), getattr(b, name)
            assert type(x) is type(y), name
            if isinstance(x, datetime):
                assert x.tzinfo is y.tzinfo is UTC, name
            if isinstance(x, list):
                assert [type(i) for i in x] == [type(i) for i in y], name


@pytest.fixture
def odd(db: DatabaseManager[Sync], backend: str) -> uuid.UUID:
    """A conversation with ordinary messages and rows holding every odd stored value."""
    agent = db.agents.create(AgentCreate(name="reader"))
    conversation = db.conversations.create(
        ConversationCreate(agent_id=agent.id, user_id="u1", metadata={"ключ": "значение ☕"})
    )
    cid = conversation.id
    db.messages.append(cid, MessageCreate(role="user", content="Купил кофе за 300 рублей ☕"))
    db.messages.append(
        cid,
        MessageCreate(
            role="assistant",
            content="",
            thinking="думаю…",
            tool_calls=[
                ToolCallRecord(id="c1", name="add", arguments={"n": 2**53 + 1, "x": [1.5, None]}),
                ToolCallRecord(name="bare"),
            ],
            metadata={"big": 2**62, "nested": {"list": [{"a": "😀"}]}, "empty": {}},
            input_tokens=2**31 - 1,
            output_tokens=0,
            message_id="42",
            reply_to_message_id="41",
            client_id="client-1",
        ),
    )
    db.messages.append(
        cid, MessageCreate(role="tool", content="4", metadata={"tool_call_id": "c1"})
    )
    now = datetime.now(UTC)
    written: list[dict[str, Any]] = [
        {  # a call stored in the chat-completions shape, another in an older shape
            "tool_calls": [
                {"id": "c2", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}},
                {"unknown": "shape"},
            ],
            "metadata": _deep(MAX_JSON_DEPTH + 3),  # stored deeper than the limit allows now
            "status": MessageStatus.CANCELLED,
        },
        {"tool_calls": None, "metadata": {}, "status": MessageStatus.STREAMING},
        {"tool_calls": [], "metadata": {"z": None}, "status": MessageStatus.ERROR},
    ]
    with db.service.unit("write") as conn:
        seq = conn.execute(select(conversations.c.last_sequence).where(conversations.c.id == cid))
        last = seq.scalar_one()
        for offset, values in enumerate(written, start=1):
            at = now + timedelta(seconds=offset)
            conn.execute(
                insert(messages).values(
                    id=new_id(),
                    conversation_id=cid,
                    seq=last + offset,
                    role=Role.ASSISTANT,
                    content=f"written {offset}",
                    created_at=at,
                    updated_at=at + timedelta(microseconds=offset),
                    **values,
                )
            )
        conn.execute(
            update(conversations)
            .where(conversations.c.id == cid)
            .values(last_sequence=last + len(written), input_tokens=2**40)
        )
        # timestamps as other writers may have stored them
        if backend != "postgresql":
            for seq_, text in ((1, "2024-01-02T03:04:05"), (2, "2024-01-02 03:04:05")):
                conn.exec_driver_sql(
                    "UPDATE messages SET updated_at = ? WHERE conversation_id = ? AND seq = ?",
                    (text, cid.hex, seq_),
                )
        else:
            conn.exec_driver_sql(
                "UPDATE messages SET updated_at = '2024-01-02 03:04:05+02' "
                "WHERE conversation_id = %s AND seq = 1",
                (cid,),
            )
    return cid


def _messages_of(cid: uuid.UUID) -> Any:
    return select(messages).where(messages.c.conversation_id == cid).order_by(messages.c.seq)


class TestReadPath:
    def test_a_page_of_messages_is_identical_to_validating_the_rows(
        self, db: DatabaseManager[Sync], odd: uuid.UUID
    ) -> None:
        expected = _reference(db, Message, _messages_of(odd))
        assert len(expected) == 6
        _assert_identical(db.messages.list(odd, limit=50, after=0).items, expected)
        _assert_identical(db.messages.last(odd, 50), expected)
        _assert_identical(db.messages.list(odd, limit=2, before=4).items, expected[1:3])

    def test_odd_stored_values_read_back_as_the_models_promise(
        self, db: DatabaseManager[Sync], odd: uuid.UUID
    ) -> None:
        items = db.messages.last(odd, 50)
        calls = items[1].tool_calls
        assert calls is not None
        assert [type(c) for c in calls] == [ToolCallRecord] * 2
        assert isinstance(calls[0], ToolCallRecord)
        assert calls[0].arguments == {"n": 2**53 + 1, "x": [1.5, None]}
        assert items[1].metadata["big"] == 2**62
        assert items[1].input_tokens == 2**31 - 1
        chat_shape, other = items[3].tool_calls or []
        assert isinstance(chat_shape, ToolCallRecord)
        assert (chat_shape.name, chat_shape.arguments) == ("f", {"a": 1})
        assert other == {"unknown": "shape"}
        level: Any = items[3].metadata
        for _ in range(MAX_JSON_DEPTH):
            level = level["a"]
        assert level == TOO_DEEP
        assert items[0].content == "Купил кофе за 300 рублей ☕"
        assert all(item.conversation_id is items[0].conversation_id for item in items)

    def test_history_is_identical_to_validating_the_rows(
        self, db: DatabaseManager[Sync], odd: uuid.UUID
    ) -> None:
        agent = db.agents.find_by_name("reader")
        assert agent is not None
        finished = _messages_of(odd).where(
            messages.c.status.in_((MessageStatus.COMPLETE, MessageStatus.CANCELLED))
        )
        expected = _reference(db, Message, finished)
        _assert_identical(db.messages.history(agent.id, "u1", limit=50), expected)
        _assert_identical(
            db.messages.history(agent.id, None, conversation_id=odd, limit=50, before=3),
            expected[:2],
        )

    def test_a_users_conversations_are_identical_to_validating_the_rows(
        self, db: DatabaseManager[Sync], odd: uuid.UUID
    ) -> None:
        for n in range(4):
            db.conversations.create(
                ConversationCreate(user_id="u1", title=f"t{n}", provider_config={"n": n})
            )
        query = (
            select(conversations)
            .where(conversations.c.user_id == "u1")
            .order_by(conversations.c.updated_at.desc(), conversations.c.id.desc())
        )
        expected = _reference(db, Conversation, query)
        assert any(c.input_tokens == 2**40 for c in expected)
        page = db.conversations.list(user_id="u1", limit=3)
        _assert_identical(page.items, expected[:3])
        assert page.next_cursor is not None
        rest = db.conversations.list(user_id="u1", limit=3, cursor=page.next_cursor)
        _assert_identical(rest.items, expected[3:])
        assert rest.next_cursor is None
        agent = db.agents.find_by_name("reader")
        assert agent is not None
        _assert_identical(
            db.conversations.list(agent_id=agent.id, status="active").items,
            [c for c in expected if c.agent_id == agent.id],
        )
