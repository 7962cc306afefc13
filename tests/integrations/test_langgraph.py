"""LangGraph's checkpoints in agentkeep, on every backend: LangGraph's own conformance suite,
and a real StateGraph (no model: a node that echoes) resumed, rewound, interrupted and reloaded."""

from __future__ import annotations

import operator
import threading
from collections.abc import AsyncIterator
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.graph import END, START, StateGraph, add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, interrupt
from sqlalchemy import func, select

from agentkeep import (
    AgentCreate,
    Async,
    ConversationCreate,
    DatabaseManager,
    MessageCreate,
    Settings,
    Sync,
)
from agentkeep.db.rows import GraphBlobRow
from agentkeep.errors import ConflictError, TooLargeError
from agentkeep.integrations.langchain import AgentkeepChatMessageHistory
from agentkeep.integrations.langgraph import AgentkeepSaver
from agentkeep.repositories import graphs
from statements import watched


class Chat(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    turns: Annotated[int, operator.add]


def echo(state: Chat) -> dict[str, Any]:
    return {"messages": [AIMessage(f"echo: {state['messages'][-1].content}")], "turns": 1}


def chat_graph(saver: AgentkeepSaver) -> CompiledStateGraph[Any, Any, Any, Any]:
    builder = StateGraph(Chat)
    builder.add_node("echo", echo)
    builder.add_edge(START, "echo")
    builder.add_edge("echo", END)
    return builder.compile(checkpointer=saver)


def thread(name: str) -> Any:
    return {"configurable": {"thread_id": name}}


def _stored(reader: AgentkeepSaver, config: Any) -> tuple[Any, Any, Any]:
    """The checkpoint ``config`` names (read by ``reader``) as a new put would send it: a new
    id, every channel."""
    found = reader.get_tuple(config)
    assert found is not None
    checkpoint = {**found.checkpoint, "id": "1ffffffff-new"}
    return checkpoint, found.metadata, dict(found.checkpoint["channel_versions"])


def contents(messages: list[AnyMessage]) -> list[Any]:
    return [m.content for m in messages]


@pytest.mark.anyio
async def test_the_saver_passes_langgraphs_conformance_suite(settings: Settings) -> None:
    from agentkeep import connect

    store = connect(settings)

    @checkpointer_test(name="AgentkeepSaver")
    async def saver() -> AsyncIterator[AgentkeepSaver]:
        yield AgentkeepSaver(store)

    try:
        report = await validate(saver)
    finally:
        await store.aclose()
    failed = {
        name: [str(f)[:300] for f in result.failures or []]
        for name, result in report.results.items()
        if not result.passed
    }
    assert failed == {}
    assert sum(r.tests_passed for r in report.results.values()) >= 80


class TestStateGraph:
    def test_a_thread_resumes_where_it_left_off(self, db: DatabaseManager[Sync]) -> None:
        graph = chat_graph(AgentkeepSaver(db))
        for text in ("one", "two", "three"):
            out = graph.invoke({"messages": [HumanMessage(text)]}, thread("t1"))
        assert contents(out["messages"]) == [
            "one", "echo: one", "two", "echo: two", "three", "echo: three",
        ]  # fmt: skip
        assert out["turns"] == 3
        # a new saver (another process, say) continues the same thread
        again = chat_graph(AgentkeepSaver(db)).invoke(
            {"messages": [HumanMessage("four")]}, thread("t1")
        )
        assert contents(again["messages"])[-2:] == ["four", "echo: four"]
        assert again["turns"] == 4
        assert chat_graph(AgentkeepSaver(db)).get_state(thread("other")).values == {}

    def test_history_and_time_travel(self, db: DatabaseManager[Sync]) -> None:
        graph = chat_graph(AgentkeepSaver(db))
        for text in ("a", "b", "c"):
            graph.invoke({"messages": [HumanMessage(text)]}, thread("t2"))
        history = list(graph.get_state_history(thread("t2")))
        assert [h.metadata["step"] for h in history if h.metadata] == list(range(7, -2, -1))
        after_first = next(h for h in history if h.metadata and h.metadata["step"] == 1)
        assert contents(after_first.values["messages"]) == ["a", "echo: a"]
        forked = graph.invoke({"messages": [HumanMessage("x")]}, after_first.config)
        assert contents(forked["messages"]) == ["a", "echo: a", "x", "echo: x"]
        assert contents(graph.get_state(thread("t2")).values["messages"]) == [
            "a", "echo: a", "x", "echo: x",
        ]  # fmt: skip
        # the old branch is still there
        assert contents(graph.get_state(history[0].config).values["messages"])[-1] == "echo: c"
        # the conversation shows each message once: the first branch, then the fork's two
        conversation = db.conversations.list().items[0]
        assert [m.content for m in db.messages.last(conversation.id)] == [
            "a", "echo: a", "b", "echo: b", "c", "echo: c", "x", "echo: x",
        ]  # fmt: skip
        # a saver that read nothing yet tells shown messages by their ids in the conversation
        fresh = AgentkeepSaver(db)
        latest = graph.get_state(thread("t2"))
        fresh.put(latest.config, *_stored(AgentkeepSaver(db), latest.config))
        assert db.messages.count(conversation.id) == 8

    def test_a_growing_list_is_stored_as_what_each_step_appends(
        self, db: DatabaseManager[Sync]
    ) -> None:
        graph = chat_graph(AgentkeepSaver(db))
        for n in range(20):
            graph.invoke({"messages": [HumanMessage(f"message {n}")]}, thread("t3"))
        blobs = GraphBlobRow.__table__
        with db.unit("read") as uow:
            whole, appended = uow.connection.execute(
                select(
                    func.count().filter(blobs.c.base_version.is_(None)),
                    func.count().filter(blobs.c.base_version.is_not(None)),
                ).where(blobs.c.channel == "messages")
            ).one()
        assert (whole, appended) == (1, 39)
        assert len(graph.get_state(thread("t3")).values["messages"]) == 40

    def test_the_threads_messages_show_in_its_conversation(self, db: DatabaseManager[Sync]) -> None:
        graph = chat_graph(AgentkeepSaver(db))
        graph.invoke({"messages": [HumanMessage("hello")]}, thread("shown"))
        graph.invoke({"messages": [HumanMessage("again")]}, thread("shown"))
        conversation = db.conversations.list().items[0]
        assert (conversation.user_id, conversation.chat_id) == ("langgraph", "shown")
        stored = db.messages.last(conversation.id)
        assert [(m.role, m.content) for m in stored] == [
            ("user", "hello"), ("assistant", "echo: hello"),
            ("user", "again"), ("assistant", "echo: again"),
        ]  # fmt: skip

    def test_a_history_and_a_thread_with_one_id_keep_their_own_messages(
        self, db: DatabaseManager[Sync]
    ) -> None:
        history = AgentkeepChatMessageHistory(db, "shared")
        history.add_messages([HumanMessage("from the history"), AIMessage("noted")])
        graph = chat_graph(AgentkeepSaver(db))
        graph.invoke({"messages": [HumanMessage("to the graph")]}, thread("shared"))
        assert [m.content for m in history.messages] == ["from the history", "noted"]
        history.clear()
        state = graph.get_state(thread("shared")).values["messages"]
        assert [m.content for m in state] == ["to the graph", "echo: to the graph"]
        page = db.conversations.list(chat_id="shared").items
        shown = {c.user_id: [m.content for m in db.messages.last(c.id)] for c in page}
        assert shown == {"langchain": [], "langgraph": ["to the graph", "echo: to the graph"]}

    def test_a_history_reads_a_threads_conversation_by_its_id_and_never_changes_it(
        self, db: DatabaseManager[Sync]
    ) -> None:
        graph = chat_graph(AgentkeepSaver(db))
        graph.invoke({"messages": [HumanMessage("hello")]}, thread("read only"))
        (conversation,) = db.conversations.list(chat_id="read only").items
        history = AgentkeepChatMessageHistory(db, str(conversation.id))
        assert [m.content for m in history.messages] == ["hello", "echo: hello"]
        with pytest.raises(ConflictError, match="only the graph changes") as refused:
            history.add_messages([HumanMessage("sneaked in")])
        assert refused.value.field == "session_id"
        with pytest.raises(ConflictError, match="only the graph changes"):
            history.clear()
        assert [m.content for m in db.messages.last(conversation.id)] == ["hello", "echo: hello"]

    def test_an_interrupt_waits_for_the_answer(self, db: DatabaseManager[Sync]) -> None:
        def ask(state: Chat) -> dict[str, Any]:
            answer = interrupt("which account?")
            return {"messages": [AIMessage(f"booked to {answer}")], "turns": 1}

        builder = StateGraph(Chat)
        builder.add_node("ask", ask)
        builder.add_edge(START, "ask")
        builder.add_edge("ask", END)
        graph: CompiledStateGraph[Any, Any, Any, Any] = builder.compile(
            checkpointer=AgentkeepSaver(db)
        )
        paused = graph.invoke({"messages": [HumanMessage("300 roubles coffee")]}, thread("i"))
        assert paused["__interrupt__"][0].value == "which account?"
        # resumed by another saver instance: the interrupt was stored
        resumed = builder.compile(checkpointer=AgentkeepSaver(db)).invoke(
            Command(resume="cash"), thread("i")
        )
        assert contents(resumed["messages"])[-1] == "booked to cash"

    def test_delete_thread_forgets_it(self, db: DatabaseManager[Sync]) -> None:
        saver = AgentkeepSaver(db)
        graph = chat_graph(saver)
        graph.invoke({"messages": [HumanMessage("gone soon")]}, thread("d"))
        saver.delete_thread("d")
        assert saver.get_tuple(thread("d")) is None
        again = graph.invoke({"messages": [HumanMessage("new")]}, thread("d"))
        assert contents(again["messages"]) == ["new", "echo: new"]

    @pytest.mark.anyio
    async def test_the_async_graph_runs_on_the_async_store(
        self, adb: DatabaseManager[Async]
    ) -> None:
        graph = chat_graph(AgentkeepSaver(adb))
        for text in ("one", "two"):
            out = await graph.ainvoke({"messages": [HumanMessage(text)]}, thread("a"))
        assert contents(out["messages"]) == ["one", "echo: one", "two", "echo: two"]
        states = [state async for state in graph.aget_state_history(thread("a"))]
        assert len(states) == 6


class TestPutCost:
    """What a put costs the database: one transaction, its checkpoint and channel versions in
    one statement on PostgreSQL and two on SQLite, and a version whose base is gone stored
    whole."""

    def test_a_turn_writes_each_checkpoint_in_one_transaction_of_few_statements(
        self, db: DatabaseManager[Sync]
    ) -> None:
        graph = chat_graph(AgentkeepSaver(db))
        graph.invoke({"messages": [HumanMessage("first")]}, thread("cost"), durability="sync")
        seen: list[str] = []
        lock = threading.Lock()

        def record(statement: str) -> None:
            with lock:
                seen.append(" ".join(statement.split()).upper())

        with watched(db.service, record):
            out = graph.invoke(
                {"messages": [HumanMessage("second")]}, thread("cost"), durability="sync"
            )
        assert contents(out["messages"])[-2:] == ["second", "echo: second"]
        stores = [s for s in seen if s.startswith(("INSERT", "WITH"))]
        checkpoints = [s for s in stores if "INTO GRAPH_CHECKPOINTS" in s]
        writes = [s for s in stores if s.startswith("INSERT INTO GRAPH_WRITES")]
        blobs = [s for s in stores if s.startswith("INSERT INTO GRAPH_BLOBS")]
        # a turn: three checkpoints (input, its step, the echo's step), two tasks' writes
        assert len(checkpoints) == 3
        assert len(writes) == 2
        bumps = [s for s in seen if s.startswith("UPDATE CONVERSATIONS")]
        if db.service.dialect == "postgresql":
            # each checkpoint's versions and new messages ride in its own statement
            assert blobs == []
            assert bumps == []
            assert all("INSERT INTO GRAPH_BLOBS" in s for s in checkpoints)
            assert [s for s in seen if s.startswith("INSERT INTO MESSAGES")] == []
            assert len([s for s in checkpoints if "INSERT INTO MESSAGES" in s]) == 2
        else:
            assert len(blobs) == 3  # one statement for all the versions of a checkpoint
            # a put or a task's writes: one write transaction (or one shared with another)
            assert 1 <= len([s for s in seen if s == "BEGIN IMMEDIATE"]) <= 5
            # one counter update for each put that shows a message, nothing read back
            assert len(bumps) == 2
            assert not [s for s in seen if s.startswith("SELECT") and "FROM MESSAGES" in s]
        # the two new messages, shown in the transactions of the checkpoints that hold them
        assert any("INTO MESSAGES" in s for s in stores)
        conversation = db.conversations.list().items[0]
        assert db.messages.count(conversation.id) == 4

    def test_a_chat_step_is_a_statement_the_postgresql_driver_keeps_parsed(self) -> None:
        # psycopg parses a statement's placeholders again on every run unless the statement
        # is short and has few parameters: a step of a chat graph (three channel versions,
        # one new message) stays within both
        from psycopg._queries import MAX_CACHED_STATEMENT_LENGTH, MAX_CACHED_STATEMENT_PARAMS
        from sqlalchemy.dialects.postgresql import psycopg

        dialect = psycopg.dialect()  # type: ignore[no-untyped-call]
        compiled = graphs._upsert_at_once(3, 1).compile(dialect=dialect)
        assert len(str(compiled).encode()) <= MAX_CACHED_STATEMENT_LENGTH
        assert len(compiled.binds) <= MAX_CACHED_STATEMENT_PARAMS

    def test_a_list_whose_stored_base_is_gone_is_stored_whole(
        self, db: DatabaseManager[Sync]
    ) -> None:
        saver = AgentkeepSaver(db)
        graph = chat_graph(saver)
        graph.invoke({"messages": [HumanMessage("kept")]}, thread("gone"))
        found = saver.get_tuple(thread("gone"))  # the saver remembers the list it read
        assert found is not None
        AgentkeepSaver(db).delete_thread("gone")  # another process deletes the thread
        messages = [*found.checkpoint["channel_values"]["messages"], HumanMessage("more")]
        version = saver.get_next_version(
            str(found.checkpoint["channel_versions"]["messages"]), None
        )
        checkpoint: Any = {
            **found.checkpoint,
            "id": "1ffffffff-after",
            "channel_values": {"messages": messages},
            "channel_versions": {"messages": version},
        }
        saver.put(found.config, checkpoint, found.metadata, {"messages": version})
        again = AgentkeepSaver(db).get_tuple(thread("gone"))
        assert again is not None
        assert contents(again.checkpoint["channel_values"]["messages"]) == [
            "kept", "echo: kept", "more",
        ]  # fmt: skip

    def test_a_checkpoint_whose_new_versions_are_all_empty_is_stored(
        self, db: DatabaseManager[Sync]
    ) -> None:
        saver = AgentkeepSaver(db)
        versions: Any = {
            "a": saver.get_next_version(None, None),
            "b": saver.get_next_version(None, None),
        }
        checkpoint: Any = {
            "v": 4,
            "id": "1f000000-empty",
            "ts": "2026-01-01T00:00:00+00:00",
            "channel_values": {},
            "channel_versions": versions,
            "versions_seen": {},
        }
        saver.put(thread("empty"), checkpoint, {}, versions)
        found = AgentkeepSaver(db).get_tuple(thread("empty"))
        assert found is not None
        assert found.checkpoint["channel_values"] == {}
        assert found.checkpoint["channel_versions"] == versions

    def test_a_list_of_other_things_is_stored_by_appends_and_shown_nowhere(
        self, db: DatabaseManager[Sync]
    ) -> None:
        class Notes(TypedDict):
            messages: Annotated[list[str], operator.add]

        builder = StateGraph(Notes)
        builder.add_node("note", lambda state: {"messages": [f"seen {len(state['messages'])}"]})
        builder.add_edge(START, "note")
        builder.add_edge("note", END)
        graph: CompiledStateGraph[Any, Any, Any, Any] = builder.compile(
            checkpointer=AgentkeepSaver(db)
        )
        for text in ("a", "b", "c"):
            out = graph.invoke({"messages": [text]}, thread("notes"))
        assert out["messages"] == ["a", "seen 1", "b", "seen 3", "c", "seen 5"]
        again = builder.compile(checkpointer=AgentkeepSaver(db)).get_state(thread("notes"))
        assert again.values["messages"] == out["messages"]
        assert db.conversations.list().items == []  # not LangChain messages: nothing shown


class TestTheMirror:
    """The thread's messages as its conversation's: counted, numbered and searchable as any
    appended message, checked as any, found again when the conversation goes."""

    def test_shown_messages_move_the_counters_of_the_conversation_and_its_agent(
        self, db: DatabaseManager[Sync]
    ) -> None:
        def answer(state: Chat) -> dict[str, Any]:
            usage = {"input_tokens": 3, "output_tokens": 5, "total_tokens": 8}
            return {"messages": [AIMessage("three lattes", usage_metadata=usage)], "turns": 1}

        builder = StateGraph(Chat)
        builder.add_node("answer", answer)
        builder.add_edge(START, "answer")
        builder.add_edge("answer", END)
        graph: CompiledStateGraph[Any, Any, Any, Any] = builder.compile(
            checkpointer=AgentkeepSaver(db)
        )
        agent = db.agents.create(AgentCreate(name="barista"))
        # a thread named by a conversation's id is shown in that conversation
        conversation = db.conversations.create(ConversationCreate(agent_id=agent.id))
        for text in ("coffee?", "more coffee?"):
            graph.invoke({"messages": [HumanMessage(text)]}, thread(str(conversation.id)))
        after = db.conversations.get(conversation.id)
        assert (after.message_count, after.input_tokens, after.output_tokens) == (4, 6, 10)
        assert after.last_message_at is not None
        assert after.updated_at >= conversation.updated_at
        shown = db.messages.all(conversation.id)
        assert [(m.seq, m.role, m.content) for m in shown] == [
            (1, "user", "coffee?"), (2, "assistant", "three lattes"),
            (3, "user", "more coffee?"), (4, "assistant", "three lattes"),
        ]  # fmt: skip
        assert [m.output_tokens for m in shown] == [None, 5, None, 5]
        assert shown[1].metadata["langchain"]["data"]["content"] == "three lattes"
        used = db.agents.get(agent.id)
        assert (used.message_count, used.input_tokens, used.output_tokens) == (4, 6, 10)
        found = db.messages.search("lattes", conversation_id=conversation.id)
        assert len(found) == 2
        # the next message goes on from the conversation's sequence
        appended = db.messages.append(conversation.id, MessageCreate(role="user", content="bye"))
        assert appended.seq == 5

    def test_many_messages_of_one_step_are_shown_in_order(self, db: DatabaseManager[Sync]) -> None:
        graph = chat_graph(AgentkeepSaver(db))
        # more than one statement's worth, then a few at once into a known conversation
        first = [HumanMessage(f"imported {n}") for n in range(20)]
        graph.invoke({"messages": first}, thread("many"))
        graph.invoke({"messages": [HumanMessage(f"then {n}") for n in range(3)]}, thread("many"))
        (conversation,) = db.conversations.list().items
        shown = db.messages.all(conversation.id)
        assert [m.content for m in shown] == [
            *(f"imported {n}" for n in range(20)),
            "echo: imported 19",
            *(f"then {n}" for n in range(3)),
            "echo: then 2",
        ]
        assert [m.seq for m in shown] == list(range(1, 26))
        assert db.conversations.get(conversation.id).message_count == 25

    def test_a_deleted_conversation_is_made_anew_for_the_next_messages(
        self, db: DatabaseManager[Sync]
    ) -> None:
        graph = chat_graph(AgentkeepSaver(db))
        graph.invoke({"messages": [HumanMessage("one")]}, thread("gone-chat"))
        first = db.conversations.list().items[0]
        db.conversations.delete(first.id)  # the saver still remembers it
        out = graph.invoke({"messages": [HumanMessage("two")]}, thread("gone-chat"))
        assert contents(out["messages"]) == ["one", "echo: one", "two", "echo: two"]
        (again,) = db.conversations.list().items
        assert again.id != first.id
        assert again.chat_id == "gone-chat"
        assert [m.content for m in db.messages.all(again.id)] == ["two", "echo: two"]
        assert db.conversations.get(again.id).message_count == 2

    def test_a_message_too_large_to_store_stores_nothing_of_its_put(
        self, settings: Settings
    ) -> None:
        from agentkeep import connect_sync

        db = connect_sync(settings.model_copy(update={"max_content_bytes": 40}))
        try:
            graph = chat_graph(AgentkeepSaver(db))
            graph.invoke({"messages": [HumanMessage("short")]}, thread("big"))
            with pytest.raises(TooLargeError) as raised:
                graph.invoke({"messages": [HumanMessage("far too long " * 10)]}, thread("big"))
            assert raised.value.field == "content"
            # the put that held it stored nothing: no checkpoint has the message
            for state in graph.get_state_history(thread("big")):
                assert "far too long" not in " ".join(contents(state.values.get("messages", [])))
            (conversation,) = db.conversations.list().items
            assert [m.content for m in db.messages.all(conversation.id)] == [
                "short", "echo: short",
            ]  # fmt: skip
        finally:
            db.close()
