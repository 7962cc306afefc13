"""The ADK session and memory services over agentkeep: what they store where, round trips,
concurrency, and the memory search, on every backend."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("google.adk")

from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions.base_session_service import GetSessionConfig
from google.genai import types

from agentkeep import Async, DatabaseManager, TooLargeError
from agentkeep.integrations.adk import AgentkeepMemoryService, AgentkeepSessionService
from agentkeep.models.conversation import MessageCreate, ToolCallRecord

pytestmark = pytest.mark.anyio


def _text(role: str, text: str) -> types.Content:
    return types.Content(role=role, parts=[types.Part(text=text)])


def _tool_turn() -> list[Event]:
    """A user question, a model call with thinking and usage, the tool's answer, the reply."""
    return [
        Event(invocation_id="inv", author="user", content=_text("user", "Weather in Paris?")),
        Event(
            invocation_id="inv",
            author="weather_agent",
            content=types.Content(
                role="model",
                parts=[
                    types.Part(text="The user wants weather.", thought=True),
                    types.Part(
                        function_call=types.FunctionCall(
                            id="call-1", name="get_weather", args={"city": "Paris"}
                        )
                    ),
                ],
            ),
            usage_metadata=types.GenerateContentResponseUsageMetadata(
                prompt_token_count=120, candidates_token_count=8, total_token_count=128
            ),
        ),
        Event(
            invocation_id="inv",
            author="weather_agent",
            content=types.Content(
                role="user",
                parts=[
                    types.Part(
                        function_response=types.FunctionResponse(
                            id="call-1", name="get_weather", response={"sky": "sunny", "c": 21}
                        )
                    )
                ],
            ),
        ),
        Event(
            invocation_id="inv",
            author="weather_agent",
            content=_text("model", "Sunny, 21 °C."),
            actions=EventActions(state_delta={"last_city": "Paris", "user:unit": "C"}),
        ),
    ]


class TestSessionsInAgentkeep:
    async def test_a_session_is_a_conversation_of_the_apps_agent(
        self, adb: DatabaseManager[Async]
    ) -> None:
        service = AgentkeepSessionService(adb)
        session = await service.create_session(
            app_name="weather", user_id="alice", session_id="s-1", state={"greeted": True}
        )
        agent = await adb.agents.find_by_name("weather")
        assert agent is not None
        page = await adb.conversations.list(user_id="alice", chat_id="s-1")
        (conversation,) = page.items
        assert conversation.agent_id == agent.id
        assert conversation.operation_type == "adk.session"
        assert conversation.updated_at.timestamp() == session.last_update_time
        state = await adb.states.get(conversation.id, "greeted")
        assert state.state_value is True

    async def test_messages_added_through_agentkeep_read_back_as_events(
        self, adb: DatabaseManager[Async]
    ) -> None:
        service = AgentkeepSessionService(adb)
        session = await service.create_session(app_name="weather", user_id="alice")
        await service.append_event(session, Event(author="user", content=_text("user", "Hi")))
        (conversation,) = (await adb.conversations.list(user_id="alice", chat_id=session.id)).items
        added = [
            await adb.messages.append(conversation.id, MessageCreate(role=role, content=text))
            for role, text in (("assistant", "Hello from the API"), ("user", "Thanks"))
        ]
        for config in (
            None,
            GetSessionConfig(num_recent_events=2),
            GetSessionConfig(after_timestamp=added[0].created_at.timestamp()),
        ):
            got = await service.get_session(
                app_name="weather", user_id="alice", session_id=session.id, config=config
            )
            assert got is not None
            shown = [
                (e.id, e.author, e.content.role, e.content.parts[0].text, e.timestamp)
                for e in got.events[-2:]
                if e.content is not None and e.content.parts
            ]
            assert shown == [
                (str(m.id), author, role, m.content, m.created_at.timestamp())
                for m, author, role in zip(added, ("agent", "user"), ("model", "user"), strict=True)
            ]
        whole = await service.get_session(
            app_name="weather", user_id="alice", session_id=session.id
        )
        assert whole is not None
        assert [e.author for e in whole.events] == ["user", "agent", "user"]

    async def test_events_are_messages_with_roles_text_tools_thinking_and_tokens(
        self, adb: DatabaseManager[Async]
    ) -> None:
        service = AgentkeepSessionService(adb)
        session = await service.create_session(app_name="weather", user_id="alice")
        for event in _tool_turn():
            await service.append_event(session, event)
        (conversation,) = (await adb.conversations.list(user_id="alice", chat_id=session.id)).items
        messages = await adb.messages.last(conversation.id, 10)
        assert [m.role for m in messages] == ["user", "assistant", "tool", "assistant"]
        question, call, result, reply = messages
        assert question.content == "Weather in Paris?"
        assert call.thinking == "The user wants weather."
        assert call.tool_calls is not None
        assert isinstance(call.tool_calls[0], ToolCallRecord)
        assert call.tool_calls[0].model_dump() == {
            "id": "call-1",
            "name": "get_weather",
            "arguments": {"city": "Paris"},
        }
        assert (call.input_tokens, call.output_tokens) == (120, 8)
        assert result.metadata["tool_call_id"] == "call-1"
        assert '"sunny"' in result.content
        assert reply.content == "Sunny, 21 °C."
        assert reply.message_id == session.events[-1].id
        conversation = await adb.conversations.get(conversation.id)
        assert (conversation.input_tokens, conversation.output_tokens) == (120, 8)

    async def test_a_round_trip_returns_the_events_adk_wrote(
        self, adb: DatabaseManager[Async]
    ) -> None:
        service = AgentkeepSessionService(adb)
        session = await service.create_session(app_name="weather", user_id="alice")
        for event in _tool_turn():
            await service.append_event(session, event)
        got = await service.get_session(app_name="weather", user_id="alice", session_id=session.id)
        assert got is not None
        assert got.events == session.events
        assert got == session
        assert got.state == {"last_city": "Paris", "user:unit": "C"}

    async def test_the_last_events_are_read_newest_first_from_the_end(
        self, adb: DatabaseManager[Async]
    ) -> None:
        service = AgentkeepSessionService(adb)
        session = await service.create_session(app_name="app", user_id="u")
        for i in range(30):
            await service.append_event(
                session, Event(author="user", content=_text("user", f"m{i}"), timestamp=1000 + i)
            )
        got = await service.get_session(
            app_name="app",
            user_id="u",
            session_id=session.id,
            config=GetSessionConfig(num_recent_events=5),
        )
        assert got is not None
        assert [e.content.parts[0].text for e in got.events if e.content and e.content.parts] == [
            f"m{i}" for i in range(25, 30)
        ]
        after = await service.get_session(
            app_name="app",
            user_id="u",
            session_id=session.id,
            config=GetSessionConfig(after_timestamp=1027.5),
        )
        assert after is not None
        assert [e.timestamp for e in after.events] == [1028, 1029]

    async def test_a_message_added_through_agentkeep_reads_as_an_event(
        self, adb: DatabaseManager[Async]
    ) -> None:
        service = AgentkeepSessionService(adb)
        await service.create_session(app_name="app", user_id="u", session_id="s")
        (conversation,) = (await adb.conversations.list(user_id="u", chat_id="s")).items
        await adb.add_message(session_id=conversation.id, role="user", content="typed in the UI")
        got = await service.get_session(app_name="app", user_id="u", session_id="s")
        assert got is not None
        (event,) = got.events
        assert event.author == "user"
        assert event.content == _text("user", "typed in the UI")

    async def test_user_state_is_read_without_a_session(self, adb: DatabaseManager[Async]) -> None:
        service = AgentkeepSessionService(adb)
        assert await service.get_user_state(app_name="app", user_id="u") == {}
        await service.create_session(app_name="app", user_id="u", state={"user:lang": "fr"})
        assert await service.get_user_state(app_name="app", user_id="u") == {"lang": "fr"}

    async def test_appending_to_a_deleted_session_raises_session_not_found(
        self, adb: DatabaseManager[Async]
    ) -> None:
        service = AgentkeepSessionService(adb)
        session = await service.create_session(app_name="app", user_id="u")
        await service.delete_session(app_name="app", user_id="u", session_id=session.id)
        with pytest.raises(SessionNotFoundError):
            await service.append_event(session, Event(author="user"))

    async def test_an_event_appended_twice_is_stored_once(
        self, adb: DatabaseManager[Async]
    ) -> None:
        service = AgentkeepSessionService(adb)
        session = await service.create_session(app_name="app", user_id="u")
        event = Event(author="user", content=_text("user", "once"))
        await service.append_event(session, event)
        stale = await service.get_session(app_name="app", user_id="u", session_id=session.id)
        assert stale is not None
        await service.append_event(stale, event.model_copy(deep=True))
        got = await service.get_session(app_name="app", user_id="u", session_id=session.id)
        assert got is not None
        assert len(got.events) == 1

    async def test_an_event_too_large_for_the_store_is_refused_with_the_field(
        self, adb: DatabaseManager[Async]
    ) -> None:
        service = AgentkeepSessionService(adb)
        session = await service.create_session(app_name="app", user_id="u")
        huge = "x" * (adb.settings.max_metadata_bytes + 1)
        with pytest.raises(TooLargeError) as caught:
            await service.append_event(session, Event(author="user", content=_text("user", huge)))
        assert caught.value.field == "metadata"
        got = await service.get_session(app_name="app", user_id="u", session_id=session.id)
        assert got is not None
        assert got.events == []

    async def test_listing_gives_state_without_events(self, adb: DatabaseManager[Async]) -> None:
        service = AgentkeepSessionService(adb)
        session = await service.create_session(
            app_name="app", user_id="u", state={"k": 1, "app:a": 2}
        )
        await service.append_event(session, Event(author="user", content=_text("user", "hi")))
        await service.create_session(app_name="other", user_id="u")
        (listed,) = (await service.list_sessions(app_name="app")).sessions
        assert listed.id == session.id
        assert listed.events == []
        assert listed.state == {"k": 1, "app:a": 2}
        assert listed.last_update_time == session.last_update_time


class TestConcurrentAppends:
    async def test_twenty_tasks_appending_to_one_session_lose_nothing(
        self, adb: DatabaseManager[Async]
    ) -> None:
        service = AgentkeepSessionService(adb)
        session = await service.create_session(app_name="app", user_id="u", session_id="busy")
        # each task holds its own (soon stale) copy of the session, as separate requests would
        copies = [session.model_copy(deep=True) for _ in range(20)]
        events = [
            Event(
                invocation_id=f"inv{i}",
                author="user",
                content=_text("user", f"event {i}"),
                actions=EventActions(
                    state_delta={f"k{i}": i, "user:count": i, "app:last": i, "temp:t": i}
                ),
            )
            for i in range(20)
        ]
        results = await asyncio.gather(
            *(service.append_event(c, e) for c, e in zip(copies, events, strict=True)),
            return_exceptions=True,
        )
        assert [r for r in results if isinstance(r, BaseException)] == []
        got = await service.get_session(app_name="app", user_id="u", session_id="busy")
        assert got is not None
        assert sorted(e.invocation_id for e in got.events) == sorted(f"inv{i}" for i in range(20))
        assert {f"k{i}" for i in range(20)} <= got.state.keys()
        assert got.state["user:count"] in range(20)
        assert got.state["app:last"] in range(20)
        assert "temp:t" not in got.state


class TestMemory:
    async def test_a_session_added_to_memory_is_found_by_a_search(
        self, adb: DatabaseManager[Async]
    ) -> None:
        sessions, memory = AgentkeepSessionService(adb), AgentkeepMemoryService(adb)
        session = await sessions.create_session(app_name="weather", user_id="alice")
        for event in _tool_turn():
            await sessions.append_event(session, event)
        await memory.add_session_to_memory(session)

        found = await memory.search_memory(app_name="weather", user_id="alice", query="Paris")
        assert found.memories
        best = found.memories[0]
        assert best.content.parts is not None
        assert best.content.parts[0].text == "Weather in Paris?"
        assert best.author == "user"
        assert best.custom_metadata["session_id"] == session.id

        page = await adb.memory.list(user_id="alice", memory_type="episodic")
        assert sorted(m.content for m in page.items) == ["Sunny, 21 °C.", "Weather in Paris?"]
        assert all(m.conversation_id is None for m in page.items)  # outlives the session

    async def test_adding_a_session_again_adds_only_new_events(
        self, adb: DatabaseManager[Async]
    ) -> None:
        sessions, memory = AgentkeepSessionService(adb), AgentkeepMemoryService(adb)
        session = await sessions.create_session(app_name="app", user_id="u")
        await sessions.append_event(session, Event(author="user", content=_text("user", "one")))
        await memory.add_session_to_memory(session)
        await sessions.append_event(session, Event(author="user", content=_text("user", "two")))
        await memory.add_session_to_memory(session)
        page = await adb.memory.list(user_id="u")
        assert sorted(m.content for m in page.items) == ["one", "two"]

    async def test_a_search_sees_only_its_apps_memories_of_its_user(
        self, adb: DatabaseManager[Async]
    ) -> None:
        memory = AgentkeepMemoryService(adb)
        for app, user in (("app", "u"), ("app", "v"), ("other", "u")):
            await memory.add_events_to_memory(
                app_name=app,
                user_id=user,
                events=[Event(author="user", content=_text("user", f"coffee for {app}/{user}"))],
            )
        found = await memory.search_memory(app_name="app", user_id="u", query="coffee")
        assert [m.content.parts[0].text for m in found.memories if m.content.parts] == [
            "coffee for app/u"
        ]
        assert (
            await memory.search_memory(app_name="none", user_id="u", query="coffee")
        ).memories == []

    async def test_a_search_returns_only_memories_that_match_the_query(
        self, adb: DatabaseManager[Async]
    ) -> None:
        memory = AgentkeepMemoryService(adb)
        events = [
            Event(author="user", content=_text("user", words))
            for words in ("I bought coffee for 300 roubles", "and a croissant", " \u200b ")
        ]
        await memory.add_events_to_memory(app_name="app", user_id="u", events=events)
        found = await memory.search_memory(app_name="app", user_id="u", query="coffee")
        assert [m.content.parts[0].text for m in found.memories if m.content.parts] == [
            "I bought coffee for 300 roubles"
        ]
        assert (await memory.search_memory(app_name="app", user_id="u", query="tea")).memories == []
        # only what a search returned counts as accessed; the blank event was not kept
        page = await adb.memory.list(user_id="u")
        accessed = {m.content: m.access_count for m in page.items}
        assert accessed == {"I bought coffee for 300 roubles": 1, "and a croissant": 0}

    async def test_a_memory_is_deleted_by_the_id_a_search_gave(
        self, adb: DatabaseManager[Async]
    ) -> None:
        memory = AgentkeepMemoryService(adb)
        await memory.add_events_to_memory(
            app_name="app",
            user_id="u",
            events=[Event(author="user", content=_text("user", "forget me"))],
        )
        (entry,) = (
            await memory.search_memory(app_name="app", user_id="u", query="forget")
        ).memories
        await memory.delete_memory(app_name="app", user_id="v", memory_id=entry.id)  # not v's
        assert (await memory.search_memory(app_name="app", user_id="u", query="forget")).memories
        await memory.delete_memory(app_name="app", user_id="u", memory_id=entry.id)
        await memory.delete_memory(app_name="app", user_id="u", memory_id="not-an-id")
        assert not (
            await memory.search_memory(app_name="app", user_id="u", query="forget")
        ).memories
