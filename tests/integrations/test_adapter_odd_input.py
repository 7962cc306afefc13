"""Odd input through the framework adapters, on every backend: a session or thread id that no
backend can bind (a lone surrogate) is agentkeep's ``ValidationError``, never the driver's raw
encoding error, and the store answers afterwards."""

from __future__ import annotations

from typing import Any, TypedDict

import pytest

from agentkeep import Async, DatabaseManager, Sync, ValidationError

LONE = "\ud800"


class TestAdkSessionIds:
    pytestmark = pytest.mark.anyio

    @pytest.fixture(autouse=True)
    def _adk(self) -> None:
        pytest.importorskip("google.adk")

    async def test_creating_or_reading_a_session_with_one_names_the_session_id(
        self, adb: DatabaseManager[Async]
    ) -> None:
        from agentkeep.integrations.adk import AgentkeepSessionService

        service = AgentkeepSessionService(adb)
        with pytest.raises(ValidationError) as caught:
            await service.create_session(app_name="app", user_id="u", session_id="s" + LONE)
        assert caught.value.field == "session_id"
        with pytest.raises(ValidationError) as caught:
            await service.get_session(app_name="app", user_id="u", session_id=LONE)
        assert caught.value.field == "session_id"
        with pytest.raises(ValidationError) as caught:
            await service.delete_session(app_name="app", user_id="u", session_id=LONE)
        assert caught.value.field == "session_id"
        session = await service.create_session(app_name="app", user_id="u", session_id="s")
        assert session.id == "s"

    async def test_one_in_a_user_or_app_name_is_a_validation_error(
        self, adb: DatabaseManager[Async]
    ) -> None:
        from agentkeep.integrations.adk import AgentkeepSessionService

        service = AgentkeepSessionService(adb)
        with pytest.raises(ValidationError):
            await service.get_session(app_name="app", user_id=LONE, session_id="s")
        with pytest.raises(ValidationError):
            await service.list_sessions(app_name=LONE)
        assert (await service.list_sessions(app_name="app")).sessions == []


class Counter(TypedDict):
    turns: int


def _graph(db: DatabaseManager[Sync]) -> Any:
    from langgraph.graph import END, START, StateGraph

    from agentkeep.integrations.langgraph import AgentkeepSaver

    builder = StateGraph(Counter)
    builder.add_node("step", lambda state: {"turns": state["turns"] + 1})
    builder.add_edge(START, "step")
    builder.add_edge("step", END)
    return builder.compile(checkpointer=AgentkeepSaver(db))


class TestLangGraphThreadIds:
    @pytest.fixture(autouse=True)
    def _langgraph(self) -> None:
        pytest.importorskip("langgraph")

    def test_running_a_thread_named_with_one_is_a_validation_error(
        self, db: DatabaseManager[Sync]
    ) -> None:
        graph = _graph(db)
        with pytest.raises(ValidationError) as caught:
            graph.invoke({"turns": 0}, {"configurable": {"thread_id": LONE}})
        assert "lone surrogate" in caught.value.message
        done = graph.invoke({"turns": 0}, {"configurable": {"thread_id": "t"}})
        assert done == {"turns": 1}
