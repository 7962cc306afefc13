"""Token totals have one source, the message writes: a message's tokens count for its
conversation and its agent when it is appended, when its counts change and (for the
conversation) when it is deleted; the store's totals sum the conversations."""

from __future__ import annotations

import uuid

import pytest

from agentkeep import (
    AgentCreate,
    ConversationCreate,
    DatabaseManager,
    MessageCreate,
    MessageUpdate,
    Sync,
    Unit,
)


def _totals(db: DatabaseManager[Sync], cid: uuid.UUID) -> tuple[int, int, int, int]:
    conversation = db.conversations.get(cid)
    assert conversation.agent_id is not None
    agent = db.agents.get(conversation.agent_id)
    return (
        conversation.input_tokens,
        conversation.output_tokens,
        agent.input_tokens,
        agent.output_tokens,
    )


def _reply(tokens_in: int | None, tokens_out: int | None) -> MessageCreate:
    return MessageCreate(
        role="assistant", content="ok", input_tokens=tokens_in, output_tokens=tokens_out
    )


class TestTokenTotals:
    def test_an_append_counts_its_tokens_for_the_conversation_and_the_agent(
        self, db: DatabaseManager[Sync]
    ) -> None:
        agent = db.agents.create(AgentCreate(name="counted"))
        cid = db.conversations.create(ConversationCreate(agent_id=agent.id)).id
        db.messages.append(cid, MessageCreate(role="user", content="no counts"))
        db.messages.append(cid, _reply(12, 5))
        db.messages.append(cid, _reply(3, None))
        assert _totals(db, cid) == (15, 5, 15, 5)

    def test_changed_counts_move_the_totals_by_the_difference(
        self, db: DatabaseManager[Sync]
    ) -> None:
        agent = db.agents.create(AgentCreate(name="counted"))
        cid = db.conversations.create(ConversationCreate(agent_id=agent.id)).id
        streamed = db.messages.append(cid, _reply(None, None))  # a reply being streamed
        db.messages.update(streamed.id, MessageUpdate(input_tokens=40, output_tokens=9))
        assert _totals(db, cid) == (40, 9, 40, 9)
        db.messages.update(streamed.id, MessageUpdate(output_tokens=11))
        assert _totals(db, cid) == (40, 11, 40, 11)
        db.messages.update(streamed.id, MessageUpdate(content="edited"))  # no counts: no move
        assert _totals(db, cid) == (40, 11, 40, 11)

    def test_a_deleted_message_leaves_the_conversation_but_not_the_agents_usage(
        self, db: DatabaseManager[Sync]
    ) -> None:
        agent = db.agents.create(AgentCreate(name="counted"))
        cid = db.conversations.create(ConversationCreate(agent_id=agent.id)).id
        kept = db.messages.append(cid, _reply(2, 1))
        gone = db.messages.append(cid, _reply(30, 20))
        assert db.messages.delete(gone.id)
        assert _totals(db, cid) == (2, 1, 32, 21)  # the agent did use them
        assert kept.input_tokens == 2

    def test_the_stores_totals_sum_the_conversations(self, db: DatabaseManager[Sync]) -> None:
        agent = db.agents.create(AgentCreate(name="counted"))
        for n in (1, 2):
            cid = db.conversations.create(ConversationCreate(agent_id=agent.id)).id
            db.messages.append(cid, _reply(10 * n, n))
        loose = db.conversations.create(ConversationCreate(user_id="no agent")).id
        db.messages.append(loose, _reply(100, 100))
        stats = db.stats()
        assert (stats.input_tokens, stats.output_tokens) == (130, 103)

    def test_counts_written_in_a_unit_that_fails_are_not_counted(
        self, db: DatabaseManager[Sync]
    ) -> None:
        agent = db.agents.create(AgentCreate(name="counted"))
        cid = db.conversations.create(ConversationCreate(agent_id=agent.id)).id

        def fail(uow: Unit) -> None:
            uow.messages.append(cid, _reply(7, 7))
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            db.run(fail)
        assert _totals(db, cid) == (0, 0, 0, 0)
