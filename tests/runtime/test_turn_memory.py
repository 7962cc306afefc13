"""Memory in chat turns, on every backend: what a turn recalls goes into the prompt the model
receives and is listed on the reply; each user message is kept as an episodic memory in the same
transaction; a memory that cannot be recalled never fails the turn; a real model summarises.

The prompt is read from the echo model itself (a subclass that keeps each request it streams);
the summary is asked of a real OpenAI-compatible server on loopback (``providers.fake_openai``).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing, asynccontextmanager
from typing import Any

import pytest

from agentkeep import AgentCreate, Async, DatabaseManager, Settings, connect
from agentkeep.managers.agents import AgentManager
from agentkeep.managers.chat import ChatEvent, ChatRuntime, NewConversation, TurnInput
from agentkeep.managers.prompt import MEMORY_SECTION
from agentkeep.managers.turn_memory import UNAVAILABLE
from agentkeep.models.memory import Memory
from agentkeep.providers.base import CompletionRequest
from agentkeep.providers.echo import EchoProvider
from providers.fake_openai import FakeOpenAI, Reply, serve, text_chunks, usage_chunk

pytestmark = pytest.mark.anyio

DAUGHTER = "The user's daughter is called Alice and she plays the cello"


class Recording(EchoProvider):
    """The echo model, keeping each request it was sent."""

    def __init__(self) -> None:
        self.requests: list[CompletionRequest] = []

    def stream(self, request: CompletionRequest) -> Any:
        self.requests.append(request)
        return super().stream(request)

    def system(self) -> str:
        return self.requests[-1].messages[0].content


@pytest.fixture
def model(monkeypatch: pytest.MonkeyPatch) -> Recording:
    recording = Recording()

    def provider(name: str, settings: Settings) -> Recording:
        assert name == "echo"
        return recording

    monkeypatch.setattr("agentkeep.managers.tool_loop.get_provider", provider)
    return recording


@asynccontextmanager
async def chat(settings: Settings, **overrides: Any) -> AsyncIterator[ChatRuntime]:
    """A runtime over the store, with settings changed for the test."""
    db = connect(settings.model_copy(update=overrides))
    try:
        yield ChatRuntime(db, AgentManager(db, db.settings), db.settings)
    finally:
        await db.aclose()


def db_of(runtime: ChatRuntime) -> DatabaseManager[Async]:
    return runtime.store.db


async def agent_id(runtime: ChatRuntime, **model_settings: Any) -> uuid.UUID:
    name = f"a-{uuid.uuid4().hex[:6]}"
    agent = await db_of(runtime).agents.create(
        AgentCreate(name=name, provider="echo", model_settings=model_settings)
    )
    return agent.id


async def run(runtime: ChatRuntime, data: NewConversation | TurnInput, cid: Any = None) -> Any:
    turn = await (runtime.start(data) if cid is None else runtime.send(cid, data))  # type: ignore[arg-type]
    async with aclosing(turn.events()) as events:
        return [event async for event in events]


def end_of(events: list[ChatEvent]) -> dict[str, Any]:
    assert events[-1].event == "message_end", events[-1]
    return events[-1].data


async def memories(runtime: ChatRuntime, **filters: Any) -> list[Memory]:
    return (await db_of(runtime).memory.list(limit=100, **filters)).items


class TestRecall:
    async def test_the_users_memory_goes_into_the_prompt_and_is_listed_on_the_reply(
        self, settings: Settings, model: Recording
    ) -> None:
        async with chat(settings, memory_capture=False) as runtime:
            db = db_of(runtime)
            kept = await db.memory.remember(DAUGHTER, user_id="u1", importance=0.9)
            await db.memory.remember("The user's car is a red bicycle", user_id="u1")
            await db.memory.remember("The user's daughter is called Zoe", user_id="u2")
            aid = await agent_id(runtime)
            asked = NewConversation(
                agent_id=aid, user_id="u1", content="what instrument does my daughter play?"
            )
            events = await run(runtime, asked)

            system = model.system()
            assert f"{MEMORY_SECTION}\n- {DAUGHTER}" in system
            assert "Zoe" not in system  # another user's
            assert "bicycle" not in system  # below the minimum score
            end = end_of(events)
            assert [m["id"] for m in end["memories"]] == [str(kept.id)]
            assert end["memories"][0]["content"] == DAUGHTER
            assert 0.3 <= end["memories"][0]["score"] <= 1
            reply = await db.messages.get(end["message_id"])
            assert reply.metadata["memories"] == end["memories"]
            assert (await db.memory.get(kept.id)).access_count == 1

    async def test_a_message_does_not_recall_itself_but_the_next_turn_recalls_it(
        self, settings: Settings, model: Recording
    ) -> None:
        async with chat(settings) as runtime:
            aid = await agent_id(runtime)
            said = "my favourite colour is teal"
            first = await run(runtime, NewConversation(agent_id=aid, user_id="u1", content=said))
            assert "memories" not in end_of(first)
            assert MEMORY_SECTION not in model.system()
            cid = first[0].data["conversation_id"]
            second = await run(runtime, TurnInput(content="what is my favourite colour?"), cid)
            assert [m["content"] for m in end_of(second)["memories"]] == [said]
            assert f"- {said}" in model.system()

    async def test_a_memory_not_about_the_message_is_not_recalled(
        self, settings: Settings, model: Recording
    ) -> None:
        async with chat(settings) as runtime:
            await db_of(runtime).memory.remember("The user's car is a red bicycle", user_id="u1")
            aid = await agent_id(runtime)
            asked = "what instrument does my daughter play?"  # no word, no likeness in common
            events = await run(runtime, NewConversation(agent_id=aid, user_id="u1", content=asked))
            assert "memories" not in end_of(events)  # fresh, it scores 0.3: but on nothing asked
            assert MEMORY_SECTION not in model.system()

    async def test_a_conversation_without_a_user_recalls_only_its_own_memories(
        self, settings: Settings, model: Recording
    ) -> None:
        async with chat(settings) as runtime:
            aid = await agent_id(runtime)
            await db_of(runtime).memory.remember("the secret word is plover")  # no one's
            first = await run(runtime, NewConversation(agent_id=aid, content="the door is blue"))
            cid = first[0].data["conversation_id"]
            events = await run(runtime, TurnInput(content="what is the secret word? door"), cid)
            assert [m["content"] for m in end_of(events)["memories"]] == ["the door is blue"]

    async def test_recall_zero_puts_no_memory_in_the_prompt(
        self, settings: Settings, model: Recording
    ) -> None:
        async with chat(settings, memory_recall=0) as runtime:
            await db_of(runtime).memory.remember(DAUGHTER, user_id="u1")
            aid = await agent_id(runtime)
            events = await run(
                runtime, NewConversation(agent_id=aid, user_id="u1", content="my daughter?")
            )
            assert "memories" not in end_of(events)
            assert MEMORY_SECTION not in model.system()
            assert len(await memories(runtime, user_id="u1")) == 2  # still captured


class TestCapture:
    async def test_each_user_message_is_kept_once_as_an_episodic_memory(
        self, settings: Settings
    ) -> None:
        async with chat(settings) as runtime:
            aid = await agent_id(runtime)
            events = await run(
                runtime,
                NewConversation(
                    agent_id=aid, user_id="u7", content="I live in Lyon", client_id="c1"
                ),
            )
            start = events[0].data
            cid = start["conversation_id"]
            again = await run(runtime, TurnInput(content="I live in Lyon", client_id="c1"), cid)
            assert again[0].data["message_id"] == start["message_id"]  # a retry: answered
            await run(runtime, TurnInput(content="   \n "), cid)  # blank: not kept
            await run(runtime, TurnInput(content="I work nights"), cid)

            kept = await memories(runtime, conversation_id=cid)
            assert sorted(m.content for m in kept) == ["I live in Lyon", "I work nights"]
            lyon = next(m for m in kept if m.content == "I live in Lyon")
            assert lyon.memory_type == "episodic"
            assert (lyon.user_id, lyon.agent_id) == ("u7", aid)
            assert str(lyon.first_message_id) == start["user_message_id"]
            assert lyon.importance == 0.5
            assert lyon.embedding_model == db_of(runtime).memory.embedder.name

    async def test_a_message_with_nothing_visible_is_answered_but_not_kept(
        self, settings: Settings
    ) -> None:
        async with chat(settings) as runtime:
            aid = await agent_id(runtime)
            events = await run(
                runtime, NewConversation(agent_id=aid, user_id="u1", content="\u200b \u2060")
            )
            end_of(events)
            assert await memories(runtime) == []

    async def test_capture_off_keeps_no_memory(self, settings: Settings) -> None:
        async with chat(settings, memory_capture=False) as runtime:
            aid = await agent_id(runtime)
            await run(runtime, NewConversation(agent_id=aid, user_id="u1", content="hello"))
            assert await memories(runtime) == []

    async def test_a_turn_whose_first_write_fails_leaves_no_memory(
        self, settings: Settings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        async with chat(settings) as runtime:
            aid = await agent_id(runtime)

            def broken(db: Any) -> Any:  # read last in the transaction, after the capture
                raise RuntimeError("the modules could not be read")

            monkeypatch.setattr(runtime.agents, "modules", broken)
            events = await run(
                runtime, NewConversation(agent_id=aid, user_id="u1", content="remember me")
            )
            assert [e.event for e in events] == ["error"]
            assert await memories(runtime) == []
            assert (await db_of(runtime).conversations.list(user_id="u1")).items == []


class TestRecallFailures:
    async def test_an_unreachable_embedder_leaves_a_warning_and_an_unembedded_memory(
        self, settings: Settings, model: Recording
    ) -> None:
        async with chat(
            settings,
            embedder="openai",
            embedding_base_url="http://127.0.0.1:9/v1",
            embedding_api_key="sk-test",
            provider_timeout=2.0,
        ) as runtime:
            aid = await agent_id(runtime)
            events = await run(
                runtime, NewConversation(agent_id=aid, user_id="u1", content="I like tea")
            )
            end = end_of(events)
            assert [w["code"] for w in end["warnings"]] == [UNAVAILABLE]
            assert "memories were not recalled" in end["warnings"][0]["message"]
            reply = await db_of(runtime).messages.get(end["message_id"])
            assert (reply.status, reply.metadata["warnings"]) == ("complete", end["warnings"])
            (kept,) = await memories(runtime, user_id="u1")
            assert (kept.content, kept.embedding) == ("I like tea", None)

    async def test_a_store_of_only_another_models_vectors_recalls_by_words_without_warning(
        self, settings: Settings, model: Recording
    ) -> None:
        async with chat(settings, memory_capture=False) as runtime:
            db = db_of(runtime)
            tea = await db.memory.remember(
                "The user likes green tea",
                user_id="u1",
                embedding=[0.1, 0.2, 0.3],
                embedding_model="my-model",
            )
            aid = await agent_id(runtime)
            events = await run(
                runtime, NewConversation(agent_id=aid, user_id="u1", content="Some tea please")
            )
            end = end_of(events)
            assert "warnings" not in end or end["warnings"] == []
            assert [m["id"] for m in end["memories"]] == [str(tea.id)]
            assert "green tea" in model.system()

    async def test_stored_embeddings_of_another_dimension_leave_a_warning(
        self, settings: Settings, model: Recording
    ) -> None:
        async with chat(settings) as runtime:
            db = db_of(runtime)
            await db.memories.register_model(db.memory.embedder.name, 8)  # as if it had changed
            aid = await agent_id(runtime)
            events = await run(
                runtime, NewConversation(agent_id=aid, user_id="u1", content="I like tea")
            )
            end = end_of(events)
            assert [w["code"] for w in end["warnings"]] == [UNAVAILABLE]
            assert "dimensions" in end["warnings"][0]["message"]
            assert MEMORY_SECTION not in model.system()
            (kept,) = await memories(runtime, user_id="u1")
            assert kept.embedding is None


@pytest.fixture(scope="module")
def model_server() -> Iterator[FakeOpenAI]:
    with serve(FakeOpenAI()) as fake:
        yield fake


class TestSummaries:
    async def test_a_real_model_summarises_every_n_messages_into_a_semantic_memory(
        self, settings: Settings, model_server: FakeOpenAI
    ) -> None:
        model_server.reset()
        async with chat(
            settings,
            openai_base_url=model_server.base_url,
            provider_timeout=2.0,
            memory_summary_every=4,
        ) as runtime:
            agent = await db_of(runtime).agents.create(
                AgentCreate(name="gpt", provider="openai", model="fake-model")
            )
            model_server.script(
                Reply(chunks=[*text_chunks("Hello Ann."), usage_chunk(5, 2)]),
                Reply(chunks=[*text_chunks("Noted: Lyon."), usage_chunk(5, 2)]),
                Reply(chunks=text_chunks("Ann lives in Lyon ", "and likes tea.")),
            )
            first = await run(
                runtime, NewConversation(agent_id=agent.id, user_id="ann", content="I am Ann")
            )
            cid = first[0].data["conversation_id"]
            assert await memories(runtime, memory_type="semantic") == []  # 2 messages so far
            await run(runtime, TurnInput(content="I live in Lyon"), cid)

            (summary,) = await memories(runtime, memory_type="semantic")
            assert summary.content == "Ann lives in Lyon and likes tea."
            assert (summary.user_id, summary.agent_id) == ("ann", agent.id)
            assert str(summary.conversation_id) == cid
            assert str(summary.first_message_id) == first[0].data["user_message_id"]
            assert summary.embedding is not None
            asked = model_server.received[-1].body["messages"]
            assert asked[0]["role"] == "system"
            assert asked[1]["content"].splitlines() == [
                "User: I am Ann",
                "Assistant: Hello Ann.",
                "User: I live in Lyon",
                "Assistant: Noted: Lyon.",
            ]

    async def test_the_echo_model_is_never_asked_for_a_summary(
        self, settings: Settings, model: Recording
    ) -> None:
        async with chat(settings, memory_summary_every=2) as runtime:
            aid = await agent_id(runtime)
            await run(runtime, NewConversation(agent_id=aid, user_id="u1", content="hi"))
            assert len(model.requests) == 1
            assert await memories(runtime, memory_type="semantic") == []
