"""ADK's own session-service contract, run against AgentkeepSessionService on every backend.

Ported from google/adk-python ``tests/unittests/sessions/test_session_service.py`` (the tests
that take its parametrised ``session_service`` fixture; commits 0c10614 and 0330145), Apache
License 2.0, Copyright 2026 Google LLC. The cases are ADK's, unchanged but for the fixture and
formatting; the ones that test one ADK backend's internals (its SQL sessions, mocks of its
engine, its stale-writer rejection, which this service replaces by never losing a write) are not
ported.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

pytest.importorskip("google.adk")

from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions.base_session_service import GetSessionConfig
from google.genai import types

from agentkeep import Async, DatabaseManager
from agentkeep.integrations.adk import AgentkeepSessionService

pytestmark = pytest.mark.anyio


@pytest.fixture
def session_service(adb: DatabaseManager[Async]) -> AgentkeepSessionService:
    return AgentkeepSessionService(adb)


async def test_get_empty_session(session_service: AgentkeepSessionService) -> None:
    assert not await session_service.get_session(
        app_name="my_app", user_id="test_user", session_id="123"
    )


async def test_create_get_session(session_service: AgentkeepSessionService) -> None:
    app_name, user_id, state = "my_app", "test_user", {"key": "value"}
    session = await session_service.create_session(app_name=app_name, user_id=user_id, state=state)
    assert session.app_name == app_name
    assert session.user_id == user_id
    assert session.id
    assert session.state == state
    assert session.last_update_time <= datetime.now().astimezone(UTC).timestamp()

    got_session = await session_service.get_session(
        app_name=app_name, user_id=user_id, session_id=session.id
    )
    assert got_session == session
    assert got_session.last_update_time <= datetime.now().astimezone(UTC).timestamp()

    await session_service.delete_session(app_name=app_name, user_id=user_id, session_id=session.id)
    assert (
        await session_service.get_session(app_name=app_name, user_id=user_id, session_id=session.id)
        is None
    )


async def test_create_and_list_sessions(session_service: AgentkeepSessionService) -> None:
    app_name, user_id = "my_app", "test_user"
    session_ids = ["session" + str(i) for i in range(5)]
    for session_id in session_ids:
        await session_service.create_session(
            app_name=app_name,
            user_id=user_id,
            session_id=session_id,
            state={"key": "value" + session_id},
        )
    sessions = (await session_service.list_sessions(app_name=app_name, user_id=user_id)).sessions
    assert len(sessions) == len(session_ids)
    assert {s.id for s in sessions} == set(session_ids)
    for session in sessions:
        assert session.state == {"key": "value" + session.id}


async def test_list_sessions_ordered_by_last_update_time(
    session_service: AgentkeepSessionService,
) -> None:
    app_name, user_id = "my_app", "test_user"
    for session_id in ("a", "b", "c"):
        await session_service.create_session(
            app_name=app_name, user_id=user_id, session_id=session_id
        )
    session_a = await session_service.get_session(
        app_name=app_name, user_id=user_id, session_id="a"
    )
    assert session_a is not None
    await asyncio.sleep(0.01)
    await session_service.append_event(
        session=session_a, event=Event(invocation_id="invocation", author="user")
    )
    response = await session_service.list_sessions(app_name=app_name, user_id=user_id)
    assert [s.id for s in response.sessions] == ["b", "c", "a"]


async def test_list_sessions_all_users(session_service: AgentkeepSessionService) -> None:
    app_name = "my_app"
    for user_id, session_id in (
        ("user1", "session1a"),
        ("user1", "session1b"),
        ("user2", "session2a"),
    ):
        await session_service.create_session(
            app_name=app_name,
            user_id=user_id,
            session_id=session_id,
            state={"key": "value" + session_id.removeprefix("session")},
        )
    sessions_1 = (await session_service.list_sessions(app_name=app_name, user_id="user1")).sessions
    assert len(sessions_1) == 2
    sessions_1_map = {s.id: s for s in sessions_1}
    assert sessions_1_map["session1a"].state == {"key": "value1a"}
    assert sessions_1_map["session1b"].state == {"key": "value1b"}

    sessions_2 = (await session_service.list_sessions(app_name=app_name, user_id="user2")).sessions
    assert len(sessions_2) == 1
    assert sessions_2[0].id == "session2a"
    assert sessions_2[0].state == {"key": "value2a"}

    sessions_all = (await session_service.list_sessions(app_name=app_name, user_id=None)).sessions
    assert len(sessions_all) == 3
    sessions_all_map = {s.id: s for s in sessions_all}
    assert sessions_all_map["session1a"].state == {"key": "value1a"}
    assert sessions_all_map["session1b"].state == {"key": "value1b"}
    assert sessions_all_map["session2a"].state == {"key": "value2a"}


async def test_app_state_is_shared_by_all_users_of_app(
    session_service: AgentkeepSessionService,
) -> None:
    app_name = "my_app"
    session1 = await session_service.create_session(
        app_name=app_name, user_id="u1", session_id="s1", state={"app:k1": "v1"}
    )
    event = Event(
        invocation_id="inv1", author="user", actions=EventActions(state_delta={"app:k2": "v2"})
    )
    await session_service.append_event(session=session1, event=event)
    session2 = await session_service.create_session(
        app_name=app_name, user_id="u2", session_id="s2"
    )
    assert session2.state == {"app:k1": "v1", "app:k2": "v2"}
    session1_got = await session_service.get_session(
        app_name=app_name, user_id="u1", session_id="s1"
    )
    assert session1_got is not None
    assert session1_got.state.get("app:k1") == "v1"
    assert session1_got.state.get("app:k2") == "v2"


async def test_user_state_is_shared_only_by_user_sessions(
    session_service: AgentkeepSessionService,
) -> None:
    app_name = "my_app"
    session1 = await session_service.create_session(
        app_name=app_name, user_id="u1", session_id="s1", state={"user:k1": "v1"}
    )
    event = Event(
        invocation_id="inv1", author="user", actions=EventActions(state_delta={"user:k2": "v2"})
    )
    await session_service.append_event(session=session1, event=event)
    session1b = await session_service.create_session(
        app_name=app_name, user_id="u1", session_id="s1b"
    )
    assert session1b.state == {"user:k1": "v1", "user:k2": "v2"}
    session2 = await session_service.create_session(
        app_name=app_name, user_id="u2", session_id="s2"
    )
    assert session2.state == {}


async def test_session_state_is_not_shared(session_service: AgentkeepSessionService) -> None:
    app_name = "my_app"
    session1 = await session_service.create_session(
        app_name=app_name, user_id="u1", session_id="s1", state={"sk1": "v1"}
    )
    event = Event(
        invocation_id="inv1", author="user", actions=EventActions(state_delta={"sk2": "v2"})
    )
    await session_service.append_event(session=session1, event=event)
    session1_got = await session_service.get_session(
        app_name=app_name, user_id="u1", session_id="s1"
    )
    assert session1_got is not None
    assert session1_got.state.get("sk1") == "v1"
    assert session1_got.state.get("sk2") == "v2"
    session1b = await session_service.create_session(
        app_name=app_name, user_id="u1", session_id="s1b"
    )
    assert session1b.state == {}


async def test_temp_state_is_not_persisted_in_state_or_events(
    session_service: AgentkeepSessionService,
) -> None:
    app_name, user_id = "my_app", "u1"
    session = await session_service.create_session(
        app_name=app_name, user_id=user_id, session_id="s1"
    )
    event = Event(
        invocation_id="inv1",
        author="user",
        actions=EventActions(state_delta={"temp:k1": "v1", "sk": "v2"}),
    )
    await session_service.append_event(session=session, event=event)
    # temp state is in the in-memory session (same invocation), not in the event's delta
    assert session.state.get("temp:k1") == "v1"
    assert session.state.get("sk") == "v2"
    assert "temp:k1" not in event.actions.state_delta
    session_got = await session_service.get_session(
        app_name=app_name, user_id=user_id, session_id="s1"
    )
    assert session_got is not None
    assert session_got.state.get("sk") == "v2"
    assert "temp:k1" not in session_got.state
    assert "temp:k1" not in session_got.events[0].actions.state_delta
    assert session_got.events[0].actions.state_delta.get("sk") == "v2"


async def test_temp_state_visible_across_sequential_events(
    session_service: AgentkeepSessionService,
) -> None:
    session = await session_service.create_session(
        app_name="my_app", user_id="u1", session_id="s_seq"
    )
    event1 = Event(
        invocation_id="inv1",
        author="agent1",
        actions=EventActions(state_delta={"temp:output": "result_from_a1"}),
    )
    await session_service.append_event(session=session, event=event1)
    assert session.state.get("temp:output") == "result_from_a1"
    assert "temp:output" not in event1.actions.state_delta


async def test_get_session_respects_user_id(session_service: AgentkeepSessionService) -> None:
    app_name = "my_app"
    session1 = await session_service.create_session(
        app_name=app_name, user_id="u1", session_id="s1"
    )
    await session_service.append_event(session1, Event(invocation_id="inv1", author="user"))
    await session_service.create_session(app_name=app_name, user_id="u2", session_id="s1")
    session2_got = await session_service.get_session(
        app_name=app_name, user_id="u2", session_id="s1"
    )
    assert session2_got is not None
    assert session2_got.user_id == "u2"
    assert len(session2_got.events) == 0


async def test_create_session_with_existing_id_raises_error(
    session_service: AgentkeepSessionService,
) -> None:
    app_name, user_id, session_id = "my_app", "test_user", "existing_session"
    await session_service.create_session(app_name=app_name, user_id=user_id, session_id=session_id)
    with pytest.raises(AlreadyExistsError):
        await session_service.create_session(
            app_name=app_name, user_id=user_id, session_id=session_id
        )


async def test_padded_session_id_reads_and_deletes(
    session_service: AgentkeepSessionService,
) -> None:
    session = await session_service.create_session(
        app_name="my_app", user_id="u", session_id="  padded  "
    )
    assert session.id == "padded"
    got = await session_service.get_session(app_name="my_app", user_id="u", session_id=" padded ")
    assert got is not None
    assert got.id == "padded"
    with pytest.raises(AlreadyExistsError):
        await session_service.create_session(app_name="my_app", user_id="u", session_id="padded ")
    await session_service.delete_session(app_name="my_app", user_id="u", session_id=" padded")
    assert (
        await session_service.get_session(app_name="my_app", user_id="u", session_id="padded")
        is None
    )


async def test_append_event_bytes(session_service: AgentkeepSessionService) -> None:
    app_name, user_id = "my_app", "user"
    session = await session_service.create_session(app_name=app_name, user_id=user_id)
    test_content = types.Content(
        role="user",
        parts=[types.Part.from_bytes(data=b"test_image_data", mime_type="image/png")],
    )
    test_grounding_metadata = types.GroundingMetadata(
        search_entry_point=types.SearchEntryPoint(sdk_blob=b"test_sdk_blob")
    )
    event = Event(
        invocation_id="invocation",
        author="user",
        content=test_content,
        grounding_metadata=test_grounding_metadata,
    )
    await session_service.append_event(session=session, event=event)
    assert session.events[0].content == test_content

    got = await session_service.get_session(
        app_name=app_name, user_id=user_id, session_id=session.id
    )
    assert got is not None
    assert len(got.events) == 1
    assert got.events[0].content == test_content
    assert got.events[0].grounding_metadata == test_grounding_metadata


async def test_append_event_complete(session_service: AgentkeepSessionService) -> None:
    app_name, user_id = "my_app", "user"
    session = await session_service.create_session(app_name=app_name, user_id=user_id)
    event = Event(
        invocation_id="invocation",
        author="user",
        content=types.Content(role="user", parts=[types.Part(text="test_text")]),
        turn_complete=True,
        partial=False,
        actions=EventActions(artifact_delta={"file": 0}, transfer_to_agent="agent", escalate=True),
        long_running_tool_ids={"tool1"},
        error_code="error_code",
        error_message="error_message",
        interrupted=True,
        grounding_metadata=types.GroundingMetadata(web_search_queries=["query1"]),
        usage_metadata=types.GenerateContentResponseUsageMetadata(
            prompt_token_count=1, candidates_token_count=1, total_token_count=2
        ),
        citation_metadata=types.CitationMetadata(),
        custom_metadata={"custom_key": "custom_value"},
        timestamp=1700000000.123,
        input_transcription=types.Transcription(text="input transcription", finished=True),
        output_transcription=types.Transcription(text="output transcription", finished=True),
    )
    await session_service.append_event(session=session, event=event)
    assert (
        await session_service.get_session(app_name=app_name, user_id=user_id, session_id=session.id)
        == session
    )


async def test_session_last_update_time_updates_on_event(
    session_service: AgentkeepSessionService,
) -> None:
    app_name, user_id = "my_app", "user"
    session = await session_service.create_session(app_name=app_name, user_id=user_id)
    original_update_time = session.last_update_time
    event_timestamp = original_update_time + 10
    event = Event(invocation_id="invocation", author="user", timestamp=event_timestamp)
    await session_service.append_event(session=session, event=event)
    assert session.last_update_time == pytest.approx(event_timestamp, abs=1e-6)

    refreshed = await session_service.get_session(
        app_name=app_name, user_id=user_id, session_id=session.id
    )
    assert refreshed is not None
    assert refreshed.last_update_time == pytest.approx(event_timestamp, abs=1e-6)
    assert refreshed.last_update_time > original_update_time


async def test_get_session_with_config(session_service: AgentkeepSessionService) -> None:
    app_name, user_id = "my_app", "user"
    num_test_events = 5
    session = await session_service.create_session(app_name=app_name, user_id=user_id)
    for i in range(1, num_test_events + 1):
        await session_service.append_event(session, Event(author="user", timestamp=i))

    async def events(config: GetSessionConfig | None) -> list[Event]:
        got = await session_service.get_session(
            app_name=app_name, user_id=user_id, session_id=session.id, config=config
        )
        assert got is not None
        return got.events

    assert len(await events(None)) == num_test_events
    assert not await events(GetSessionConfig(num_recent_events=0))

    recent = await events(GetSessionConfig(num_recent_events=3))
    assert len(recent) == 3
    assert recent[0].timestamp == num_test_events - 3 + 1

    after_timestamp = 4.0
    after = await events(GetSessionConfig(after_timestamp=after_timestamp))
    assert len(after) == num_test_events - after_timestamp + 1
    assert after[0].timestamp == after_timestamp

    assert not await events(GetSessionConfig(after_timestamp=num_test_events * 10))

    both = await events(GetSessionConfig(after_timestamp=after_timestamp, num_recent_events=3))
    assert len(both) == num_test_events - after_timestamp + 1


async def test_partial_events_are_not_persisted(session_service: AgentkeepSessionService) -> None:
    app_name, user_id = "my_app", "user"
    session = await session_service.create_session(app_name=app_name, user_id=user_id)
    await session_service.append_event(session, Event(author="user", partial=True))
    assert len(session.events) == 0
    got = await session_service.get_session(
        app_name=app_name, user_id=user_id, session_id=session.id
    )
    assert got is not None
    assert len(got.events) == 0
