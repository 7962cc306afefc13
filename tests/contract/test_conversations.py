"""Contract: conversations (create, read, list, update, delete) on every backend."""

from __future__ import annotations

import uuid

import pytest

from agentkeep import (
    AgentCreate,
    ConversationCreate,
    ConversationStatus,
    ConversationUpdate,
    DatabaseManager,
    NotFoundError,
    PersonaCreate,
    Sync,
    TooLargeError,
    ValidationError,
)


class TestConversations:
    def test_create_round_trips_every_field(self, db: DatabaseManager[Sync]) -> None:
        persona = db.personas.create(PersonaCreate(name="helper", template="You help."))
        agent = db.agents.create(AgentCreate(name="expenses", persona_id=persona.id))
        created = db.conversations.create(
            ConversationCreate(
                agent_id=agent.id,
                persona_id=persona.id,
                user_id="telegram_user_id",
                chat_id="telegram_chat_id",
                title="Кофе за 300 рублей",
                operation_type="expense",
                agent_state="ExpenseAgent",
                external_ref="7",
                provider_type="echo",
                provider_config={"temperature": 0.2},
                metadata={"source": "telegram"},
            )
        )
        assert db.conversations.get(created.id) == created
        assert created.status is ConversationStatus.ACTIVE
        assert created.created_at.tzinfo is not None

    def test_creating_a_conversation_counts_it_for_its_agent(
        self, db: DatabaseManager[Sync]
    ) -> None:
        agent = db.agents.create(AgentCreate(name="a"))
        db.conversations.create(ConversationCreate(agent_id=agent.id))
        db.conversations.create(ConversationCreate(agent_id=agent.id))
        used = db.agents.get(agent.id)
        assert used.conversation_count == 2
        assert used.last_used_at is not None
        assert used.updated_at == agent.updated_at  # usage is not a configuration change

    def test_unknown_agent_or_persona_is_not_found_and_nothing_is_written(
        self, db: DatabaseManager[Sync]
    ) -> None:
        with pytest.raises(NotFoundError) as caught:
            db.conversations.create(ConversationCreate(agent_id=uuid.uuid4()))
        assert caught.value.field == "agent_id"
        with pytest.raises(NotFoundError) as caught:
            db.conversations.create(ConversationCreate(persona_id=uuid.uuid4()))
        assert caught.value.field == "persona_id"
        assert db.conversations.count() == 0

    def test_list_filters_and_orders_by_latest_activity(self, db: DatabaseManager[Sync]) -> None:
        agent = db.agents.create(AgentCreate(name="a"))
        first = db.conversations.create(ConversationCreate(user_id="u", chat_id="c1"))
        second = db.conversations.create(
            ConversationCreate(user_id="u", chat_id="c2", agent_id=agent.id)
        )
        db.conversations.create(ConversationCreate(user_id="someone else"))
        db.add_message(session_id=first.id, role="user", content="back again")
        assert [c.id for c in db.conversations.list(user_id="u").items] == [first.id, second.id]
        assert [c.id for c in db.conversations.list(user_id="u", chat_id="c2").items] == [second.id]
        assert [c.id for c in db.conversations.list(agent_id=agent.id).items] == [second.id]
        db.conversations.update(second.id, ConversationUpdate(status="completed"))
        assert [c.id for c in db.conversations.list(status="active", user_id="u").items] == [
            first.id
        ]

    def test_list_rejects_a_bad_status_limit_or_cursor(self, db: DatabaseManager[Sync]) -> None:
        with pytest.raises(ValidationError) as caught:
            db.conversations.list(status="finished")
        assert caught.value.field == "status"
        with pytest.raises(ValidationError) as caught:
            db.conversations.list(limit=0)
        assert caught.value.field == "limit"
        with pytest.raises(ValidationError) as caught:
            db.conversations.list(limit=db.settings.max_page_size + 1)
        assert caught.value.field == "limit"
        with pytest.raises(ValidationError) as caught:
            db.conversations.list(cursor="not a cursor")
        assert caught.value.field == "cursor"

    def test_update_changes_only_what_is_set(self, db: DatabaseManager[Sync]) -> None:
        created = db.conversations.create(ConversationCreate(user_id="u", title="t"))
        updated = db.conversations.update(
            created.id, ConversationUpdate(status="completed", external_ref="row 7")
        )
        assert (updated.status, updated.external_ref, updated.title) == ("completed", "row 7", "t")
        assert updated.updated_at >= created.updated_at
        cleared = db.conversations.update(created.id, ConversationUpdate(title=None))
        assert cleared.title is None

    def test_update_rejects_clearing_a_required_field(self, db: DatabaseManager[Sync]) -> None:
        created = db.conversations.create(ConversationCreate(user_id="u"))
        with pytest.raises(ValidationError) as caught:
            db.conversations.update(created.id, ConversationUpdate(status=None))
        assert caught.value.field == "status"
        with pytest.raises(NotFoundError) as missing:
            db.conversations.update(created.id, ConversationUpdate(agent_id=uuid.uuid4()))
        assert missing.value.field == "agent_id"
        assert db.conversations.get(created.id) == created

    def test_update_or_get_of_an_unknown_conversation_is_not_found(
        self, db: DatabaseManager[Sync]
    ) -> None:
        with pytest.raises(NotFoundError):
            db.conversations.update(uuid.uuid4(), ConversationUpdate(title="x"))
        with pytest.raises(NotFoundError):
            db.conversations.get(str(uuid.uuid4()))
        assert db.conversations.find(uuid.uuid4()) is None
        assert db.conversations.delete(uuid.uuid4()) is False

    def test_oversized_metadata_is_too_large(self, db: DatabaseManager[Sync]) -> None:
        big = {"blob": "x" * db.settings.max_metadata_bytes}
        with pytest.raises(TooLargeError) as caught:
            db.conversations.create(ConversationCreate(user_id="u", metadata=big))
        assert caught.value.field == "metadata"
        assert db.conversations.count() == 0


class TestInMemoryUrl:
    def test_an_explicit_sqlite_memory_url_is_the_in_memory_store(self) -> None:
        from agentkeep import Settings, connect_sync

        db = connect_sync(Settings(database_url="sqlite:///:memory:"))
        try:
            assert db.service.is_memory
            created = db.conversations.create(ConversationCreate(user_id="u"))
            assert db.conversations.get(created.id) == created
        finally:
            db.close()
