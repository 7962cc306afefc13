"""Odd input through the Python API, on every backend: documents nested too deeply and text that
is not valid Unicode are refused with a ``ValidationError`` naming the field, nothing written;
a too-deep document an older release stored reads back cut at the limit, never failing a read.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select, update

from agentkeep import (
    AgentCreate,
    Async,
    ConversationCreate,
    DatabaseManager,
    MessageCreate,
    Sync,
    Unit,
    ValidationError,
    WorkflowCreate,
    connect_sync,
)
from agentkeep.db.prepared import param, prepared
from agentkeep.db.tables import agents, conversation_states, conversations, messages
from agentkeep.models.common import (
    MAX_JSON_DEPTH,
    TOO_DEEP,
    check_json,
    check_text_size,
    json_problem,
)

LONE = "\ud800"


def nested(levels: int, leaf: Any = 1) -> Any:
    """A document ``levels`` objects deep (``nested(2) == {"a": {"a": 1}}``)."""
    document = leaf
    for _ in range(levels):
        document = {"a": document}
    return document


def depth_of(document: Any) -> int:
    levels = 0
    while isinstance(document, dict):
        levels, document = levels + 1, document["a"]
    return levels


class TestDepthCheck:
    def test_a_document_at_the_limit_passes_and_one_level_more_fails(self) -> None:
        assert json_problem(nested(MAX_JSON_DEPTH)) is None
        problem = json_problem(nested(MAX_JSON_DEPTH + 1))
        assert problem is not None
        assert str(MAX_JSON_DEPTH) in problem

    def test_lists_count_as_levels_too(self) -> None:
        document: Any = []
        for _ in range(MAX_JSON_DEPTH):
            document = [document]
        assert json_problem(document) is not None
        assert json_problem(document[0]) is None

    def test_a_document_deeper_than_the_stack_is_checked_without_recursion(self) -> None:
        with pytest.raises(ValidationError) as caught:
            check_json(nested(100_000), 10**9, "metadata")
        assert caught.value.field == "metadata"

    def test_a_reference_cycle_is_refused_not_walked_forever(self) -> None:
        loop: list[Any] = []
        loop.extend([loop, loop])  # two edges per level: exponential if walked naively
        with pytest.raises(ValidationError):
            check_json({"loop": loop}, 10**9, "metadata")

    def test_a_shared_part_is_fine(self) -> None:
        part = {"k": [1, 2]}
        assert json_problem({"a": part, "b": [part, part]}) is None

    @pytest.mark.parametrize("where", ["value", "key"])
    def test_a_lone_surrogate_in_a_document_is_refused(self, where: str) -> None:
        document = {"k": LONE} if where == "value" else {LONE: 1}
        with pytest.raises(ValidationError) as caught:
            check_json(document, 10**6, "metadata")
        assert caught.value.field == "metadata"
        assert LONE not in caught.value.message  # the message itself can always be sent

    def test_text_reaching_the_store_without_a_model_is_checked(self) -> None:
        with pytest.raises(ValidationError) as caught:
            check_text_size("ok" + LONE, 10**6, "thinking")
        assert caught.value.field == "thinking"


class TestRefusedThroughThePythonApi:
    def test_a_too_deep_message_metadata_is_refused_naming_the_field(
        self, db: DatabaseManager[Sync]
    ) -> None:
        cid = db.conversations.create(ConversationCreate(user_id="u")).id
        deep = nested(MAX_JSON_DEPTH + 1)
        with pytest.raises(ValidationError) as caught:
            db.messages.append(cid, MessageCreate(role="user", content="x", metadata=deep))
        assert caught.value.field == "metadata"
        with pytest.raises(ValidationError) as caught:
            db.add_message(session_id=cid, role="user", content="x", metadata=deep)
        assert caught.value.field == "metadata"
        assert db.messages.count(cid) == 0
        assert db.conversations.get(cid).message_count == 0

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("model_settings", nested(MAX_JSON_DEPTH + 1)),
            ("metadata", {"note": "half " + LONE}),
        ],
    )
    def test_agent_documents_are_refused_naming_the_field(
        self, db: DatabaseManager[Sync], field: str, value: Any
    ) -> None:
        with pytest.raises(ValidationError) as caught:
            db.agents.create(AgentCreate(name="a", **{field: value}))
        assert caught.value.field == field
        assert db.agents.count() == 0

    def test_conversation_metadata_state_values_and_workflow_steps_are_checked(
        self, db: DatabaseManager[Sync]
    ) -> None:
        deep = nested(MAX_JSON_DEPTH + 1)
        with pytest.raises(ValidationError) as caught:
            db.conversations.create(ConversationCreate(metadata=deep))
        assert caught.value.field == "metadata"
        cid = db.conversations.create(ConversationCreate()).id
        for value in (deep, [LONE], {"k": {"k": LONE}}):
            with pytest.raises(ValidationError) as caught:
                db.states.put(cid, "k", value)
            assert caught.value.field == "state_value"
        assert db.states.list(cid).items == []
        with pytest.raises(ValidationError) as caught:  # a step's own keys may hold any JSON
            db.workflows.create(WorkflowCreate(name="w", steps=[{"agent": "a", "with": deep}]))
        assert caught.value.field == "steps"
        with pytest.raises(ValidationError) as caught:
            db.workflows.create(WorkflowCreate(name="w", steps=[deep]))  # names no agent or tool
        assert caught.value.field == "steps.0"

    @pytest.mark.parametrize("field", ["content", "thinking"])
    def test_a_lone_surrogate_in_text_is_refused_and_nothing_is_written(
        self, db: DatabaseManager[Sync], field: str
    ) -> None:
        fields: dict[str, Any] = {"role": "user", "content": "ok", field: "a" + LONE + "b"}
        with pytest.raises(ValidationError) as refused:  # the model refuses it, as it does NUL
            MessageCreate.model_validate(fields)
        assert refused.value.field == field
        cid = db.conversations.create(ConversationCreate()).id
        with pytest.raises(ValidationError) as caught:
            db.add_message(session_id=cid, **fields)
        assert caught.value.field == field
        with pytest.raises(ValidationError) as caught:  # a model built without validation
            db.messages.append(cid, MessageCreate.model_construct(**fields))
        assert caught.value.field == field
        assert db.messages.count(cid) == 0

    def test_a_lone_surrogate_in_a_name_is_refused(self, db: DatabaseManager[Sync]) -> None:
        with pytest.raises(ValidationError) as caught:
            db.create_conversation(user_id="u" + LONE)
        assert caught.value.field == "user_id"
        assert db.conversations.count() == 0


class TestLoneSurrogateInLookups:
    """Text that no backend can bind (a lone surrogate) given to a read or a filter is a
    ``ValidationError``: naming the argument where the public API checks it, and from the
    driver's boundary wherever else a statement binds it (never the driver's raw error)."""

    @pytest.mark.parametrize(
        ("field", "call"),
        [
            ("reply_to_message_id", lambda db: db.find_conversation_by_reply(LONE)),
            ("chat_id", lambda db: db.find_conversation_by_reply("1", chat_id=LONE)),
            ("user_id", lambda db: db.conversations.list(user_id=LONE)),
            ("chat_id", lambda db: db.conversations.list(chat_id="c" + LONE)),
            ("agent_name", lambda db: db.load_history(LONE, user_id="u")),
            ("user_id", lambda db: db.load_history("a", user_id=LONE)),
            ("user_id", lambda db: db.memory.recall("tea", user_id=LONE)),
            ("memory_type", lambda db: db.memory.recall("tea", memory_type=LONE)),
            ("q", lambda db: db.memory.recall("tea " + LONE)),
            ("user_id", lambda db: db.memory.list(user_id=LONE)),
            ("text", lambda db: db.messages.search(LONE)),
            ("text", lambda db: db.messages.search("word " + LONE)),
            ("message_id", lambda db: db.messages.find_by_platform_id("m" + LONE)),
        ],
    )
    def test_a_checked_argument_is_named(
        self, db: DatabaseManager[Sync], field: str, call: Callable[[Any], object]
    ) -> None:
        db.memory.remember("likes tea", user_id="u")
        with pytest.raises(ValidationError) as caught:
            call(db)
        assert caught.value.field == field
        assert "lone surrogate" in caught.value.message

    @pytest.mark.parametrize(
        "call",
        [
            lambda db: db.agents.find_by_name(LONE),
        ],
    )
    def test_any_other_statement_binding_it_is_refused_too(
        self, db: DatabaseManager[Sync], call: Callable[[Any], object]
    ) -> None:
        with pytest.raises(ValidationError) as caught:
            call(db)
        assert "is not valid text: it holds a lone surrogate (U+D800)" in caught.value.message
        assert db.conversations.count() == 0  # the store still answers

    def test_a_prepared_statement_binding_it_is_refused(self, db: DatabaseManager[Sync]) -> None:
        statement = select(conversations.c.id).where(conversations.c.user_id == param("user"))
        with db.unit("read") as uow:
            runnable = prepared(statement, uow.connection.dialect)
            for run in (runnable.rows, runnable.first, runnable.run):
                with pytest.raises(ValidationError) as caught:
                    run(uow.connection, {"user": "u" + LONE})
                assert "lone surrogate" in caught.value.message
        with db.unit("write") as uow:  # the unit that saw it is not left broken
            uow.conversations.create(ConversationCreate(user_id="u"))
        assert db.conversations.count() == 1

    def test_a_write_unit_that_meets_it_writes_nothing(self, db: DatabaseManager[Sync]) -> None:
        def create_then_look_up(uow: Any) -> None:
            uow.conversations.create(ConversationCreate(user_id="u"))
            uow.agents.find_by_name(LONE)

        with pytest.raises(ValidationError):
            db.run(create_then_look_up, "write")
        assert db.conversations.count() == 0


class TestTooDeepDocumentsStoredEarlier:
    """A store written by a release without the depth limit still reads."""

    def test_every_read_answers_with_the_document_cut_at_the_limit(
        self, db: DatabaseManager[Sync]
    ) -> None:
        deep = nested(300)
        agent = db.agents.create(AgentCreate(name="a"))
        cid = db.conversations.create(ConversationCreate(agent_id=agent.id, user_id="u")).id
        mid = db.messages.append(cid, MessageCreate(role="user", content="x")).id
        db.states.put(cid, "k", 1)
        with db.service.unit("write", single=True) as conn:
            conn.execute(update(messages).where(messages.c.id == mid).values(metadata=deep))
            conn.execute(update(conversations).values(metadata=deep))
            conn.execute(update(agents).values(model_settings=deep))
            conn.execute(update(conversation_states).values(state_value=[deep]))

        read = db.messages.last(cid, 10)[0].metadata
        assert depth_of(read) == MAX_JSON_DEPTH
        assert _innermost(read) == TOO_DEEP
        json.dumps(read)
        conversation = db.conversations.list(user_id="u").items[0]
        assert depth_of(conversation.metadata) == MAX_JSON_DEPTH
        conversation.model_dump_json()  # encodable: the API answers with it
        assert depth_of(db.agents.get(agent.id).model_settings) == MAX_JSON_DEPTH
        state = db.states.get(cid, "k")
        assert depth_of(state.state_value[0]) == MAX_JSON_DEPTH - 1
        state.model_dump_json()

    def test_a_document_within_the_limit_reads_back_as_it_is(
        self, db: DatabaseManager[Sync]
    ) -> None:
        cid = db.conversations.create(ConversationCreate(metadata=nested(MAX_JSON_DEPTH))).id
        assert db.conversations.get(cid).metadata == nested(MAX_JSON_DEPTH)


def _innermost(document: Any) -> Any:
    while isinstance(document, dict):
        document = document["a"]
    return document


def _cursor(*parts: str) -> str:
    """A cursor as ``encode_cursor`` writes one, of any parts (what a client could forge)."""
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


EDGE_TIMES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]
"""Times with an offset that UTC cannot hold: a day before year 1, a day after year 9999."""


class TestTimesUtcCannotHold:
    """A time whose UTC form is out of ``datetime``'s range is bad input, never a storage error:
    refused naming the field where a model or a cursor reads it, and at the store's edge
    (binding it) wherever else it arrives."""

    @pytest.mark.parametrize("when", EDGE_TIMES)
    @pytest.mark.parametrize(
        "listing",
        [
            lambda db, cid, cursor: db.conversations.list(cursor=cursor),
            lambda db, cid, cursor: db.memory.list(cursor=cursor),
            lambda db, cid, cursor: db.conversation_data.list(cid, cursor=cursor),
            lambda db, cid, cursor: db.questions.list(cid, cursor=cursor),
        ],
    )
    def test_a_cursor_naming_one_is_not_valid(
        self, db: DatabaseManager[Sync], when: str, listing: Callable[..., object]
    ) -> None:
        cid = db.create_conversation(user_id="u")
        with pytest.raises(ValidationError) as caught:
            listing(db, cid, _cursor(when, str(cid)))
        assert (caught.value.field, caught.value.message) == ("cursor", "cursor is not valid")

    @pytest.mark.parametrize("when", EDGE_TIMES)
    def test_an_answer_time_is_refused_naming_answered_at(
        self, db: DatabaseManager[Sync], when: str
    ) -> None:
        cid = db.create_conversation(user_id="u")
        question = db.questions.ask(cid, "agent", "Which account?")
        with pytest.raises(ValidationError) as caught:
            db.questions.answer(question.id, "cash", answered_at=datetime.fromisoformat(when))
        assert caught.value.field == "answered_at"
        assert "out of range" in caught.value.message
        assert db.questions.list(cid).items[0].answer is None

    @pytest.mark.parametrize("when", EDGE_TIMES)
    def test_a_filter_bound_at_the_store_edge_is_refused(
        self, db: DatabaseManager[Sync], when: str
    ) -> None:
        db.memory.remember("likes tea", user_id="u")
        edge = datetime.fromisoformat(when)
        listings: list[Callable[[], object]] = [
            lambda: db.memory.list(created_after=edge),
            lambda: db.memory.list(created_before=edge),
        ]
        for listing in listings:
            with pytest.raises(ValidationError) as caught:
                listing()
            assert "is out of range: in UTC it falls before year 1" in caught.value.message
        assert len(db.memory.list().items) == 1  # the store still answers


class TestCursorsOfTextNoCursorHolds:
    @pytest.mark.parametrize("part", ["\x00", LONE, "a\x00b"])
    @pytest.mark.parametrize(
        "listing",
        [
            lambda db, cid, cursor: db.templates.list(cursor=cursor),
            lambda db, cid, cursor: db.agents.list(cursor=cursor),
            lambda db, cid, cursor: db.conversations.list(cursor=cursor),
        ],
    )
    def test_a_part_with_a_nul_or_a_lone_surrogate_is_not_valid(
        self, db: DatabaseManager[Sync], part: str, listing: Callable[..., object]
    ) -> None:
        cid = db.create_conversation(user_id="u")
        with pytest.raises(ValidationError) as caught:
            listing(db, cid, _cursor("expense", part))
        assert caught.value.field == "cursor"
        assert db.conversations.count() == 1  # the store still answers


class TestUnitsOfWorkMisused:
    """A unit of work given what cannot run in it is refused before anything is written, never
    a unit that quietly commits nothing."""

    @pytest.mark.anyio
    async def test_an_async_def_is_refused_on_the_async_store(
        self, adb: DatabaseManager[Async]
    ) -> None:
        with pytest.raises(TypeError, match="not an async def"):
            await adb.run(ASYNC_WORK)
        with pytest.raises(TypeError, match="not an async def"):
            await adb.run(RETURNS_AN_AWAITABLE)  # found once it returns: rolled back
        assert await adb.conversations.count() == 0

    def test_an_async_def_is_refused_on_the_sync_store(self, db: DatabaseManager[Sync]) -> None:
        for work in (ASYNC_WORK, RETURNS_AN_AWAITABLE):
            with pytest.raises(TypeError, match="not an async def"):
                db.run(work)
        assert db.conversations.count() == 0

    @pytest.mark.parametrize("intent", ["bogus", "READ", "", None])
    def test_an_intent_other_than_read_or_write_is_refused(
        self, db: DatabaseManager[Sync], intent: Any
    ) -> None:
        with pytest.raises(ValidationError) as caught:
            db.run(lambda uow: uow.conversations.create(ConversationCreate(user_id="u")), intent)
        assert caught.value.field == "intent"
        with pytest.raises(ValidationError), db.unit(intent):
            pass
        assert db.conversations.count() == 0


class TestUnitsUsedPastTheirEnd:
    """A unit kept past its end (returned from db.run, used after its block) refuses use: its
    connection is back in the pool, where a write would run outside any transaction and leave
    one open for whoever takes the connection next."""

    def test_a_unit_from_a_block_refuses_use_and_the_store_keeps_working(
        self, db: DatabaseManager[Sync]
    ) -> None:
        with db.unit("write") as uow:
            uow.conversations.create(ConversationCreate(user_id="inside"))
        with pytest.raises(RuntimeError, match="this unit of work has ended"):
            uow.conversations.create(ConversationCreate(user_id="late"))
        db.create_conversation(user_id="after")  # the pooled connection was not left broken
        assert sorted(c.user_id or "" for c in db.conversations.list().items) == [
            "after",
            "inside",
        ]

    def test_a_unit_returned_by_db_run_refuses_use(self, db: DatabaseManager[Sync]) -> None:
        kept = db.run(lambda uow: uow, "read")
        with pytest.raises(RuntimeError, match="this unit of work has ended"):
            kept.conversations.count()
        failed: list[Unit] = []

        def fails(uow: Unit) -> None:
            failed.append(uow)
            raise ValueError("work failed")

        with pytest.raises(ValueError, match="work failed"):
            db.run(fails)
        with pytest.raises(RuntimeError, match="this unit of work has ended"):
            failed[0].conversations.create(ConversationCreate(user_id="late"))
        assert db.conversations.count() == 0

    @pytest.mark.anyio
    async def test_the_same_on_the_async_store(self, adb: DatabaseManager[Async]) -> None:
        kept = await adb.run(lambda uow: uow)
        with pytest.raises(RuntimeError, match="this unit of work has ended"):
            kept.conversations.create(ConversationCreate(user_id="late"))
        await adb.create_conversation(user_id="after")
        assert await adb.conversations.count() == 1


async def _create(uow: Unit) -> None:
    uow.conversations.create(ConversationCreate(user_id="u"))


ASYNC_WORK: Any = _create
RETURNS_AN_AWAITABLE: Any = functools.partial(lambda work, uow: work(uow), _create)
"""Typed ``Any``: what a caller without a type checker could pass."""


@pytest.mark.parametrize("target", ["", "   "])
def test_an_empty_database_target_is_refused_not_opened_in_memory(target: str) -> None:
    with pytest.raises(ValidationError) as caught:
        connect_sync(target)
    assert caught.value.field == "database_url"
