"""Upgrading a first-release database: data written at migration 0001 reads back at head.

A fresh database (a SQLite file, a PostgreSQL database) is migrated to "0001" only and every table
0001 creates is filled through tables reflected from that database, with values stored the way the
first release stored them (on SQLite: UUIDs as 32 hex characters, timestamps as naive UTC text,
embeddings as float32 bytes). Then it is upgraded to head and everything is read back through the
public API only, field by field; appending to an old conversation must continue its sequence, and
full-text search must find messages written before migration 0002 made the index.
"""

# ruff: noqa: RUF001 - Cyrillic, Greek and other non-ASCII text on purpose
from __future__ import annotations

import uuid
from array import array
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from pydantic import BaseModel

from agentkeep import DatabaseManager, MessageCreate, MessageUpdate, Settings, Sync, connect_sync
from agentkeep.db import migrate
from agentkeep.db.service import DatabaseService
from conftest import fresh_postgres_database

FIRST_RELEASE = "0001"


def _id(n: int) -> uuid.UUID:
    return uuid.UUID(f"0190f5a0-0000-7000-8000-{n:012d}")


def _at(minutes: int, zone: timezone | ZoneInfo = UTC) -> datetime:
    """A timestamp ``minutes`` after a fixed start, expressed in ``zone`` (with microseconds)."""
    start = datetime(2025, 3, 9, 6, 30, 15, 123456, tzinfo=UTC)  # US DST begins that day
    return (start + timedelta(minutes=minutes)).astimezone(zone)


KOLKATA = timezone(timedelta(hours=5, minutes=30))
NEW_YORK = ZoneInfo("America/New_York")
MOSCOW = ZoneInfo("Europe/Moscow")

PERSONA, BARE_PERSONA = _id(1), _id(2)
MODULE, BARE_MODULE = _id(11), _id(12)
TOOL, BARE_TOOL = _id(21), _id(22)
WORKFLOW, BARE_WORKFLOW = _id(31), _id(32)
AGENT, BARE_AGENT = _id(41), _id(42)
CONVERSATION, BARE_CONVERSATION = _id(51), _id(52)
HELLO, SEARCHING, TOOL_RESULT, FOUND = _id(61), _id(62), _id(63), _id(65)
PARTIAL, MISSING, COMPLETE = _id(71), _id(72), _id(73)
ANSWERED, PENDING = _id(81), _id(82)
STEP, COUNTER, FLAGS, NOTHING = _id(91), _id(92), _id(93), _id(94)
SESSION, BARE_SESSION = _id(101), _id(102)
MEMORY, BARE_MEMORY = _id(111), _id(112)
TEMPLATE = _id(121)

EMBEDDING = [0.5, -0.25, 1.0, 0.125, 3.0e-3]  # the last is not exact in float32
USER, CHAT = "user-ü", "chat-42"


def _scope(persona: uuid.UUID | None, module: uuid.UUID | None) -> str:
    """``conversation_states.scope`` as the first release wrote it."""
    return f"{persona or '-'}/{module or '-'}"


# Every table migration 0001 creates, with rows as the first release's column types take them.
# Python None is SQL NULL; sa.JSON.NULL is a JSON null.
FIRST_RELEASE_ROWS: dict[str, list[dict[str, Any]]] = {
    "personas": [
        {
            "id": PERSONA,
            "name": "Ассистент Аня 🤖",
            "description": "Говорит по-русски, понимает 日本語 и emoji",
            "template": "You are {{name}}.\nОтвечай кратко; use \"quotes\" and 'apostrophes'.",
            "mode": "chat",
            "loop_frequency": "5m",
            "first_message": "Привет! 👋",
            "image_path": "/images/аня.png",
            "is_active": True,
            "created_at": _at(0, MOSCOW),
            "updated_at": _at(5, KOLKATA),
        },
        {
            "id": BARE_PERSONA,
            "name": "bare",
            "description": None,
            "template": "",
            "mode": None,
            "loop_frequency": None,
            "first_message": None,
            "image_path": None,
            "is_active": False,
            "created_at": _at(1),
            "updated_at": _at(1),
        },
    ],
    "modules": [
        {
            "id": MODULE,
            "name": "weather",
            "description": "Погода по городу",
            "content": "Report the weather in °C.",
            "type": "tool",
            "trigger_pattern": r"(?i)\b(погода|weather)\b",
            "script": "def run(city):\n    return fetch(city)\n",
            "execution_context": "POST_RESPONSE",
            "requires_ai_inference": True,
            "stage_priority": -5,
            "is_active": True,
            "created_at": _at(2, NEW_YORK),
            "updated_at": _at(3, NEW_YORK),
        },
        {
            "id": BARE_MODULE,
            "name": "bare-module",
            "description": None,
            "content": None,
            "type": "prompt",
            "trigger_pattern": None,
            "script": None,
            "execution_context": "ON_DEMAND",
            "requires_ai_inference": False,
            "stage_priority": 100,
            "is_active": False,
            "created_at": _at(2),
            "updated_at": _at(2),
        },
    ],
    "tools": [
        {
            "id": TOOL,
            "name": "search_web",
            "description": "Search the web",
            "parameters": {
                "type": "object",
                "properties": {
                    "q": {"type": "string", "description": "запрос"},
                    "limit": {"type": "integer", "minimum": 1, "default": 5},
                    "filters": {"type": "array", "items": {"enum": ["news", "images", None]}},
                },
                "required": ["q"],
            },
            "config": {"timeout_s": 2.5, "headers": {"Accept-Language": "ru, de;q=0.8"}},
            "usage_count": 7,
            "last_used_at": _at(30, KOLKATA),
            "created_at": _at(4),
            "updated_at": _at(6),
        },
        {
            "id": BARE_TOOL,
            "name": "noop",
            "description": None,
            "parameters": {},
            "config": {},
            "usage_count": 0,
            "last_used_at": None,
            "created_at": _at(4),
            "updated_at": _at(4),
        },
    ],
    "workflows": [
        {
            "id": WORKFLOW,
            "name": "бронирование",
            "description": "triage → search → write",
            "steps": ["triage", {"agent": "writer", "retry": {"max": 3, "backoff": [1, 2.5]}}],
            "config": {"parallel": False, "label": "日本語", "limits": None},
            "created_at": _at(7, MOSCOW),
            "updated_at": _at(8, MOSCOW),
        },
        {
            "id": BARE_WORKFLOW,
            "name": "empty",
            "description": None,
            "steps": [],
            "config": {},
            "created_at": _at(7),
            "updated_at": _at(7),
        },
    ],
    "agents": [
        {
            "id": AGENT,
            "name": "booking-agent",
            "description": "Бронирует отели",
            "persona_id": PERSONA,
            "provider": "anthropic",
            "model": "claude-sonnet",
            "model_settings": {"temperature": 0.2, "max_tokens": 1024, "stop": ["\n\nHuman:"]},
            "metadata": {
                "owner": "Zoë",
                "tags": ["α", "β"],
                "nested": {"deep": {"deeper": [1, 2.5, None, True, "ß"]}},
            },
            "include_history": False,
            "conversation_count": 1,
            "message_count": 4,
            "last_used_at": _at(40, NEW_YORK),
            "created_at": _at(9),
            "updated_at": _at(10, KOLKATA),
        },
        {
            "id": BARE_AGENT,
            "name": "bare-agent",
            "description": None,
            "persona_id": None,
            "provider": None,
            "model": None,
            "model_settings": {},
            "metadata": {},
            "include_history": True,
            "conversation_count": 0,
            "message_count": 0,
            "last_used_at": None,
            "created_at": _at(9),
            "updated_at": _at(9),
        },
    ],
    "agent_tools": [
        {"agent_id": AGENT, "tool_id": TOOL, "created_at": _at(11)},
        {"agent_id": AGENT, "tool_id": BARE_TOOL, "created_at": _at(12)},
    ],
    "conversations": [
        {
            "id": CONVERSATION,
            "agent_id": AGENT,
            "persona_id": PERSONA,
            "user_id": USER,
            "chat_id": CHAT,
            "title": "Поездка в Zürich ✈️",
            "status": "active",
            "operation_type": "booking",
            "agent_state": "collecting",
            "external_ref": "sheet-row-17",
            "provider_type": "telegram",
            "provider_config": {"bot": "@helper_bot", "parse_mode": "HTML"},
            "metadata": {"locale": "ru-RU", "emoji": "🎉", "trip": {"nights": 3, "pets": None}},
            "message_count": 4,
            "last_sequence": 5,  # message 4 was deleted: sequence numbers are not reused
            "last_message_at": _at(40, NEW_YORK),
            "created_at": _at(20, MOSCOW),
            "updated_at": _at(40, NEW_YORK),
        },
        {
            "id": BARE_CONVERSATION,
            "agent_id": None,
            "persona_id": None,
            "user_id": None,
            "chat_id": None,
            "title": None,
            "status": "abandoned",
            "operation_type": None,
            "agent_state": None,
            "external_ref": None,
            "provider_type": None,
            "provider_config": {},
            "metadata": {},
            "message_count": 0,
            "last_sequence": 0,
            "last_message_at": None,
            "created_at": _at(21),
            "updated_at": _at(21),
        },
    ],
    "messages": [
        {
            "id": HELLO,
            "conversation_id": CONVERSATION,
            "seq": 1,
            "role": "user",
            "content": "Привет! Хочу забронировать отель в Zürich на 3 ночи 🏨",
            "thinking": None,
            "tool_calls": None,
            "extra_data": {"platform": {"chat": CHAT, "from": {"id": 1001, "name": "Ёжик"}}},
            "input_tokens": None,
            "output_tokens": None,
            "status": "complete",
            "message_id": "tg-1001",
            "reply_to_message_id": None,
            "client_id": "client-1",
            "created_at": _at(20, MOSCOW),
            "updated_at": _at(20, MOSCOW),
        },
        {
            "id": SEARCHING,
            "conversation_id": CONVERSATION,
            "seq": 2,
            "role": "assistant",
            "content": "Ищу варианты… 🔍",
            "thinking": "The user wants a hotel; call search_web first.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "search_web", "arguments": '{"q": "Zürich hotel"}'},
                }
            ],
            "extra_data": {"model": "claude-sonnet", "latency_ms": 812.5, "stop": None},
            "input_tokens": 1200,
            "output_tokens": 85,
            "status": "complete",
            "message_id": "tg-1002",
            "reply_to_message_id": "tg-1001",
            "client_id": None,
            "created_at": _at(21, KOLKATA),
            "updated_at": _at(22, KOLKATA),
        },
        {
            "id": TOOL_RESULT,
            "conversation_id": CONVERSATION,
            "seq": 3,
            "role": "tool",
            "content": '{"results": 3}',
            "thinking": None,
            "tool_calls": None,
            "extra_data": {"tool_call_id": "call_1"},
            "input_tokens": 0,
            "output_tokens": 0,
            "status": "complete",
            "message_id": None,
            "reply_to_message_id": None,
            "client_id": None,
            "created_at": _at(23),
            "updated_at": _at(23),
        },
        {
            "id": FOUND,
            "conversation_id": CONVERSATION,
            "seq": 5,
            "role": "assistant",
            "content": "Нашёл три отеля у озера. Which one do you prefer?",
            "thinking": "",
            "tool_calls": [],
            "extra_data": {"ответ": {"варианты": ["Baur au Lac", "Storchen", "Widder"]}},
            "input_tokens": 2048,
            "output_tokens": 310,
            "status": "cancelled",
            "message_id": "tg-1003",
            "reply_to_message_id": "tg-1001",
            "client_id": "client-2",
            "created_at": _at(40, NEW_YORK),
            "updated_at": _at(41, NEW_YORK),
        },
    ],
    "conversation_data": [
        {
            "id": PARTIAL,
            "conversation_id": CONVERSATION,
            "data_type": "partial",
            "content": {"city": "Zürich", "nights": 3, "guests": {"adults": 2, "kids": []}},
            "created_at": _at(24, MOSCOW),
        },
        {
            "id": MISSING,
            "conversation_id": CONVERSATION,
            "data_type": "missing_fields",
            "content": ["check_in", "budget"],
            "created_at": _at(25),
        },
        {
            "id": COMPLETE,
            "conversation_id": CONVERSATION,
            "data_type": "complete",
            "content": {"city": "Zürich", "check_in": "2025-03-12", "budget": {"CHF": 450.0}},
            "created_at": _at(26, KOLKATA),
        },
    ],
    "agent_questions": [
        {
            "id": ANSWERED,
            "conversation_id": CONVERSATION,
            "agent_name": "booking-agent",
            "question": "Когда заезд?",
            "missing_fields": ["check_in"],
            "message_id": "tg-1004",
            "answer": "12 марта",
            "asked_at": _at(27, MOSCOW),
            "answered_at": _at(28, NEW_YORK),
        },
        {
            "id": PENDING,
            "conversation_id": CONVERSATION,
            "agent_name": "booking-agent",
            "question": "Какой бюджет?",
            "missing_fields": [],
            "message_id": None,
            "answer": None,
            "asked_at": _at(29),
            "answered_at": None,
        },
    ],
    "conversation_states": [
        {
            "id": STEP,
            "conversation_id": CONVERSATION,
            "persona_id": PERSONA,
            "module_id": MODULE,
            "scope": _scope(PERSONA, MODULE),
            "state_key": "step",
            "state_value": {"stage": 2, "история": ["a", "b"], "done": False},
            "created_at": _at(30),
            "updated_at": _at(31, KOLKATA),
        },
        {
            "id": COUNTER,
            "conversation_id": CONVERSATION,
            "persona_id": None,
            "module_id": None,
            "scope": _scope(None, None),
            "state_key": "counter",
            "state_value": 42,
            "created_at": _at(30),
            "updated_at": _at(30),
        },
        {
            "id": FLAGS,
            "conversation_id": CONVERSATION,
            "persona_id": PERSONA,
            "module_id": None,
            "scope": _scope(PERSONA, None),
            "state_key": "флаги",
            "state_value": [True, None, "x", 1.5],
            "created_at": _at(30),
            "updated_at": _at(30),
        },
        {
            "id": NOTHING,
            "conversation_id": CONVERSATION,
            "persona_id": None,
            "module_id": MODULE,
            "scope": _scope(None, MODULE),
            "state_key": "nothing",
            "state_value": sa.JSON.NULL,
            "created_at": _at(30),
            "updated_at": _at(30),
        },
    ],
    "user_sessions": [
        {
            "id": SESSION,
            "user_id": USER,
            "chat_id": CHAT,
            "last_conversation_id": CONVERSATION,
            "timezone": "Asia/Kolkata",
            "metadata": {"lang": "hi", "नाम": "राज", "prefs": {"units": "metric"}},
            "last_activity_at": _at(40, KOLKATA),
            "created_at": _at(19, KOLKATA),
        },
        {
            "id": BARE_SESSION,
            "user_id": "u2",
            "chat_id": "c2",
            "last_conversation_id": None,
            "timezone": "UTC",
            "metadata": {},
            "last_activity_at": _at(1),
            "created_at": _at(1),
        },
    ],
    "memories": [
        {
            "id": MEMORY,
            "conversation_id": CONVERSATION,
            "agent_id": AGENT,
            "persona_id": PERSONA,
            "first_message_id": HELLO,
            "user_id": USER,
            "content": "Пользователь любит отели у озера",
            "memory_type": "preference",
            "importance": 0.75,
            "embedding": EMBEDDING,
            "metadata": {"source": "chat", "confidence": 0.9, "evidence": ["tg-1001"]},
            "last_accessed_at": _at(45, MOSCOW),
            "access_count": 3,
            "created_at": _at(42),
            "updated_at": _at(43, NEW_YORK),
        },
        {
            "id": BARE_MEMORY,
            "conversation_id": None,
            "agent_id": None,
            "persona_id": None,
            "first_message_id": None,
            "user_id": None,
            "content": "bare fact",
            "memory_type": None,
            "importance": 0.0,
            "embedding": None,
            "metadata": {},
            "last_accessed_at": None,
            "access_count": 0,
            "created_at": _at(44),
            "updated_at": _at(44),
        },
    ],
    "operation_templates": [
        {
            "id": TEMPLATE,
            "operation_type": "booking",
            "template_name": "hotel-ru",
            "sample_input": "Забронируй отель в Цюрихе на 3 ночи",
            "expected_output": {"city": "Zürich", "nights": 3, "extras": {"breakfast": True}},
            "usage_count": 11,
            "created_at": _at(13, MOSCOW),
            "updated_at": _at(14),
        },
    ],
}


# -- the first release's database ---------------------------------------------------------------


def _stored(value: Any, column: sa.Column[Any], dialect: str) -> Any:
    """``value`` as the first release's column types stored it, for a reflected column."""
    if value is None:
        return sa.null()
    if dialect != "sqlite":
        return value  # the reflected PostgreSQL types (uuid, timestamptz, jsonb, vector) suffice
    if isinstance(value, uuid.UUID):
        return value.hex  # sa.Uuid on SQLite: CHAR(32)
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None)  # UTCDateTime on SQLite: naive UTC
    if isinstance(column.type, sa.LargeBinary):
        return array("f", value).tobytes()  # Embedding on SQLite: float32 bytes
    return value


def _fill_first_release(service: DatabaseService) -> None:
    """Write ``FIRST_RELEASE_ROWS`` into a database at revision 0001, through tables reflected
    from it (the current models describe head, not 0001)."""
    with service.unit("write") as conn:
        schema = sa.MetaData()
        schema.reflect(conn)
        tables = {t.name for t in schema.sorted_tables} - {"alembic_version"}
        assert tables == set(FIRST_RELEASE_ROWS)  # every table 0001 creates gets rows
        for table in schema.sorted_tables:  # parents before children
            for row in FIRST_RELEASE_ROWS.get(table.name, []):
                values = {
                    name: _stored(v, table.c[name], service.dialect) for name, v in row.items()
                }
                conn.execute(sa.insert(table).values(values))


# -- reading it back ------------------------------------------------------------------------------


def _read(field: str, value: Any) -> Any:
    """What the API gives back for a stored value."""
    if value is sa.JSON.NULL:
        return None
    if field == "embedding" and value is not None:
        return array("f", value).tolist()  # embeddings come back as float32
    return value


def _assert_as_stored(
    item: BaseModel,
    row: Mapping[str, Any],
    *,
    renamed: Mapping[str, str] | None = None,
    skip: tuple[str, ...] = (),
) -> None:
    """Every column of ``row`` reads back unchanged as the field of ``item`` with its name."""
    renamed = renamed or {}
    got = item.model_dump()
    fields = {renamed.get(c, c): v for c, v in row.items() if c not in skip}
    actual = {field: got[field] for field in fields}
    assert actual == {field: _read(field, v) for field, v in fields.items()}
    for field, value in actual.items():  # timestamps: the same instant, now in UTC
        if isinstance(value, datetime):
            assert value.tzinfo is not None
            assert value.utcoffset() == timedelta(0), field


def _row(table: str, key: uuid.UUID) -> dict[str, Any]:
    (found,) = (row for row in FIRST_RELEASE_ROWS[table] if row["id"] == key)
    return found


def _assert_first_release_data(
    db: DatabaseManager[Sync], *, agent_used: bool = False, appended: bool = False
) -> None:
    """Every row written at 0001 reads back through the public API as it was written.

    ``agent_used``: ``AGENT`` has been used since (its ``last_used_at`` moved on); ``appended``: a
    message was appended to ``CONVERSATION`` since (its counters and times moved on, and its
    agent's)."""
    _assert_configuration(db, agent_used=agent_used or appended, appended=appended)
    _assert_conversations(db, appended=appended)
    _assert_conversation_flow(db)
    _assert_sessions_memories_and_templates(db)


def _assert_configuration(db: DatabaseManager[Sync], *, agent_used: bool, appended: bool) -> None:
    for key in (PERSONA, BARE_PERSONA):
        _assert_as_stored(db.personas.get(key), _row("personas", key))
    for key in (MODULE, BARE_MODULE):
        _assert_as_stored(db.modules.get(key), _row("modules", key))
    for key in (TOOL, BARE_TOOL):
        _assert_as_stored(db.tools.get(key), _row("tools", key))
    for key in (WORKFLOW, BARE_WORKFLOW):
        _assert_as_stored(db.workflows.get(key), _row("workflows", key))
    moved: tuple[str, ...] = ("last_used_at",) if agent_used else ()
    moved += ("message_count",) if appended else ()
    _assert_as_stored(db.agents.get(AGENT), _row("agents", AGENT), skip=moved)
    _assert_as_stored(db.agents.get(BARE_AGENT), _row("agents", BARE_AGENT))
    assert db.personas.find_by_name("Ассистент Аня 🤖") == db.personas.get(PERSONA)
    assert [t.id for t in db.agents.list_tools(AGENT).items] == [BARE_TOOL, TOOL]  # by name
    assert [a.id for a in db.tools.list_agents_using(TOOL).items] == [AGENT]
    assert db.agents.list_tools(BARE_AGENT).items == []


def _assert_conversations(db: DatabaseManager[Sync], *, appended: bool) -> None:
    moved = ("message_count", "last_message_at", "updated_at") if appended else ()
    _assert_as_stored(
        db.conversations.get(CONVERSATION),
        _row("conversations", CONVERSATION),
        skip=("last_sequence", *moved),  # last_sequence is not part of the API
    )
    _assert_as_stored(
        db.conversations.get(BARE_CONVERSATION),
        _row("conversations", BARE_CONVERSATION),
        skip=("last_sequence",),
    )
    assert [c.id for c in db.get_user_active_conversations(USER, CHAT)] == [CONVERSATION]

    history = db.messages.last(CONVERSATION, 50)
    old = FIRST_RELEASE_ROWS["messages"]
    assert [m.seq for m in history[: len(old)]] == [1, 2, 3, 5]
    for message, row in zip(history, old, strict=False):
        _assert_as_stored(message, row, renamed={"extra_data": "metadata"})
    assert db.messages.get(SEARCHING) == history[1]
    assert db.messages.last(BARE_CONVERSATION, 50) == []
    assert db.find_conversation_by_reply("tg-1002") == CONVERSATION
    assert db.find_conversation_by_reply("tg-1003", chat_id=CHAT) == CONVERSATION
    assert db.find_conversation_by_reply("tg-1003", chat_id="another chat") is None
    # written before migration 0002: found only if the migration indexed the existing rows
    assert [m.id for m in db.messages.search("забронировать отель")] == [HELLO]
    assert [m.id for m in db.messages.search("prefer", user_id=USER)] == [FOUND]
    assert [m.id for m in db.messages.search("варианты", role="assistant")] == [SEARCHING]


def _assert_conversation_flow(db: DatabaseManager[Sync]) -> None:
    snapshots = db.conversation_data.list(CONVERSATION).items  # newest first
    assert [s.id for s in snapshots] == [COMPLETE, MISSING, PARTIAL]
    for snapshot in snapshots:
        _assert_as_stored(snapshot, _row("conversation_data", snapshot.id))
    questions = db.questions.list(CONVERSATION).items  # newest first
    assert [q.id for q in questions] == [PENDING, ANSWERED]
    for question in questions:
        _assert_as_stored(question, _row("agent_questions", question.id))
    assert [q.id for q in db.questions.pending(CONVERSATION)] == [PENDING]

    context = db.get_conversation_context(CONVERSATION)
    assert context.partial_data == _row("conversation_data", PARTIAL)["content"]
    assert context.complete_data == _row("conversation_data", COMPLETE)["content"]
    assert context.missing_fields == ["check_in", "budget"]
    assert context.last_bot_message_id == "tg-1003"
    assert context.message_history == db.messages.last(CONVERSATION, 50)

    for state in FIRST_RELEASE_ROWS["conversation_states"]:
        scope = {"persona_id": state["persona_id"], "module_id": state["module_id"]}
        found = db.states.get(CONVERSATION, state["state_key"], **scope)
        _assert_as_stored(found, state, skip=("scope",))  # scope is not part of the API
    assert len(db.states.list(CONVERSATION).items) == 4
    assert [s.id for s in db.states.list(CONVERSATION, module_id=MODULE).items] == [NOTHING, STEP]


def _assert_sessions_memories_and_templates(db: DatabaseManager[Sync]) -> None:
    for session in FIRST_RELEASE_ROWS["user_sessions"]:
        found = db.user_sessions.get(session["user_id"], session["chat_id"])
        _assert_as_stored(found, session)

    _assert_as_stored(db.memories.get(MEMORY), _row("memories", MEMORY))
    _assert_as_stored(db.memories.get(BARE_MEMORY), _row("memories", BARE_MEMORY))
    ((nearest, similarity),) = db.memories.search(EMBEDDING, k=5)  # the bare one has none
    assert nearest == db.memories.get(MEMORY)
    assert similarity == pytest.approx(1.0)

    (template,) = FIRST_RELEASE_ROWS["operation_templates"]
    _assert_as_stored(db.templates.get(TEMPLATE), template)
    assert db.templates.find_by_name("booking", "hotel-ru") == db.templates.get(TEMPLATE)


# -- the tests ------------------------------------------------------------------------------------


@pytest.fixture(
    params=[
        pytest.param("sqlite", marks=pytest.mark.sqlite),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """An empty database of this test's own (it is migrated up and down)."""
    if request.param == "sqlite":
        return Settings(database_url=f"sqlite:///{tmp_path / 'first.db'}", auto_migrate=False)
    url = fresh_postgres_database(
        request.getfixturevalue("postgres_server_url"), "agentkeep_upgrade"
    )
    return Settings(database_url=url, auto_migrate=False, pool_size=2)


@pytest.fixture
def service(settings: Settings) -> Iterator[DatabaseService]:
    """The database at revision 0001, every table of it filled."""
    service = DatabaseService(settings)
    migrate.upgrade(service, FIRST_RELEASE)
    assert migrate.current(service) == FIRST_RELEASE
    _fill_first_release(service)
    yield service
    service.dispose()


def _append_continues_the_old_sequence(db: DatabaseManager[Sync]) -> None:
    new = MessageCreate(
        role="user", content="А завтрак включён? breakfast", reply_to_message_id="tg-1003"
    )
    stored = db.messages.append(CONVERSATION, new)
    assert stored.seq == 6  # after last_sequence 5, not message_count 4
    assert [m.seq for m in db.messages.last(CONVERSATION, 50)] == [1, 2, 3, 5, 6]
    assert db.conversations.get(CONVERSATION).message_count == 5
    assert db.agents.get(AGENT).message_count == 5
    assert [m.id for m in db.messages.search("breakfast")] == [stored.id]


def test_a_first_release_database_upgrades_to_head_and_reads_back(
    service: DatabaseService, settings: Settings
) -> None:
    migrate.upgrade(service)
    assert migrate.current(service) == migrate.head()
    assert migrate.check(service) == []
    with connect_sync(settings, upgrade=False) as db:
        _assert_first_release_data(db)
        # migration 0004: agents made before it start counting tokens at 0; 0006: conversations
        # start with their messages' sums
        agent = db.agents.get(AGENT)
        assert (agent.input_tokens, agent.output_tokens) == (0, 0)
        conversation = db.conversations.get(CONVERSATION)
        assert (conversation.input_tokens, conversation.output_tokens) == (3248, 395)
        _append_continues_the_old_sequence(db)
        _assert_first_release_data(db, appended=True)
        db.api_keys.create("after the upgrade")  # migration 0003's table
        assert [key.name for key in db.api_keys.list()] == ["after the upgrade"]
        first = db.messages.append(BARE_CONVERSATION, MessageCreate(role="user", content="x"))
        assert first.seq == 1
        # an old message's token counts, changed, move its conversation's and agent's totals
        db.messages.update(SEARCHING, MessageUpdate(input_tokens=1300))  # 100 more
        agent = db.agents.get(AGENT)
        assert (agent.input_tokens, agent.output_tokens) == (100, 0)
        conversation = db.conversations.get(CONVERSATION)
        assert (conversation.input_tokens, conversation.output_tokens) == (3348, 395)


def test_downgrading_to_the_first_release_and_upgrading_again_keeps_the_data(
    service: DatabaseService, settings: Settings
) -> None:
    migrate.upgrade(service)
    migrate.downgrade(service, FIRST_RELEASE)
    assert migrate.current(service) == FIRST_RELEASE
    migrate.upgrade(service)
    assert migrate.check(service) == []
    with connect_sync(settings, upgrade=False) as db:
        # the search index is rebuilt over the old messages too
        _assert_first_release_data(db)
        agent = db.agents.get(AGENT)
        assert (agent.input_tokens, agent.output_tokens) == (0, 0)  # 0004's columns were dropped
        conversation = db.conversations.get(CONVERSATION)  # 0006's, summed again
        assert (conversation.input_tokens, conversation.output_tokens) == (3248, 395)
        _append_continues_the_old_sequence(db)
