"""Contract: personas, modules, agents, tools and workflows behave the same on every backend."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from agentkeep import (
    AgentCreate,
    AgentUpdate,
    Async,
    ConflictError,
    ConversationCreate,
    DatabaseManager,
    ExecutionContext,
    ModuleCreate,
    ModuleUpdate,
    NotFoundError,
    PersonaCreate,
    PersonaUpdate,
    Sync,
    TooLargeError,
    ToolCreate,
    ToolUpdate,
    ValidationError,
    WorkflowCreate,
    WorkflowUpdate,
)
from agentkeep.models.common import encode_cursor, validate_input

Declare = Callable[[str], Any]

KINDS: dict[str, tuple[Declare, Any]] = {
    "personas": (lambda n: PersonaCreate(name=n, template="You are {name}."), PersonaUpdate),
    "modules": (lambda n: ModuleCreate(name=n, type="simple"), ModuleUpdate),
    "agents": (lambda n: AgentCreate(name=n), AgentUpdate),
    "tools": (lambda n: ToolCreate(name=n), ToolUpdate),
    "workflows": (lambda n: WorkflowCreate(name=n), WorkflowUpdate),
}


@pytest.fixture(params=sorted(KINDS))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _a(noun: str) -> str:
    return f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"


def _repo(db: DatabaseManager[Sync], kind: str) -> Any:
    return getattr(db, kind)


class TestEveryKind:
    """What personas, modules, agents, tools and workflows all do, being declared by name."""

    def test_create_then_get_find_and_find_by_name(
        self, db: DatabaseManager[Sync], kind: str
    ) -> None:
        declare, _ = KINDS[kind]
        created = _repo(db, kind).create(declare("Ассистент ✨"))
        assert _repo(db, kind).get(created.id) == created
        assert _repo(db, kind).get(str(created.id)) == created
        assert _repo(db, kind).find(created.id) == created
        assert _repo(db, kind).find_by_name("Ассистент ✨") == created
        assert _repo(db, kind).find_by_name("nobody") is None
        assert _repo(db, kind).find_by_name("nul\x00") is None
        assert created.created_at.tzinfo is not None
        assert created.created_at == created.updated_at

    def test_duplicate_name_is_a_conflict(self, db: DatabaseManager[Sync], kind: str) -> None:
        declare, update = KINDS[kind]
        repo = _repo(db, kind)
        repo.create(declare("same"))
        with pytest.raises(ConflictError) as caught:
            repo.create(declare("same"))
        assert caught.value.field == "name"
        assert caught.value.message == f'{_a(kind[:-1])} named "same" already exists'
        other = repo.create(declare("other"))
        with pytest.raises(ConflictError) as caught:
            repo.update(other.id, update(name="same"))
        assert caught.value.field == "name"
        assert caught.value.message == f'{_a(kind[:-1])} named "same" already exists'
        assert repo.count() == 2
        assert repo.get(other.id).name == "other"

    def test_unknown_id_is_not_found(self, db: DatabaseManager[Sync], kind: str) -> None:
        _, update = KINDS[kind]
        repo = _repo(db, kind)
        missing = uuid.uuid4()
        field = kind.removesuffix("s") + "_id"
        with pytest.raises(NotFoundError) as caught:
            repo.get(missing)
        assert caught.value.field == field
        with pytest.raises(NotFoundError) as caught:
            repo.update(missing, update(description="x"))
        assert caught.value.field == field
        with pytest.raises(NotFoundError):
            repo.update(missing, update())
        assert repo.find(missing) is None
        assert repo.delete(missing) is False
        assert repo.count() == 0

    def test_malformed_id_is_a_validation_error(self, db: DatabaseManager[Sync], kind: str) -> None:
        repo = _repo(db, kind)
        field = kind.removesuffix("s") + "_id"
        with pytest.raises(ValidationError) as caught:
            repo.get("not-a-uuid")
        assert caught.value.field == field
        with pytest.raises(ValidationError):
            repo.delete(12345)

    def test_update_changes_only_the_fields_set(self, db: DatabaseManager[Sync], kind: str) -> None:
        declare, update = KINDS[kind]
        repo = _repo(db, kind)
        created = repo.create(declare("first"))
        described = repo.update(created.id, update(description="Описание"))
        assert described.description == "Описание"
        assert described.name == "first"
        assert described.updated_at >= created.updated_at
        renamed = repo.update(created.id, update(name="second"))
        assert (renamed.name, renamed.description) == ("second", "Описание")
        cleared = repo.update(created.id, update(description=None))
        assert cleared.description is None
        assert repo.update(created.id, update()) == cleared

    def test_required_field_cannot_be_cleared(self, db: DatabaseManager[Sync], kind: str) -> None:
        declare, update = KINDS[kind]
        repo = _repo(db, kind)
        created = repo.create(declare("kept"))
        with pytest.raises(ValidationError) as caught:
            repo.update(created.id, update(name=None))
        assert caught.value.field == "name"
        assert repo.get(created.id) == created

    def test_delete_removes_it(self, db: DatabaseManager[Sync], kind: str) -> None:
        declare, _ = KINDS[kind]
        repo = _repo(db, kind)
        created = repo.create(declare("gone"))
        assert repo.delete(str(created.id)) is True
        assert repo.find(created.id) is None
        assert repo.delete(created.id) is False

    def test_upsert_by_name_inserts_then_updates_keeping_the_id(
        self, db: DatabaseManager[Sync], kind: str
    ) -> None:
        declare, _ = KINDS[kind]
        repo = _repo(db, kind)
        inserted = repo.upsert_by_name(declare("declared"))
        changed = declare("declared").model_copy(update={"description": "now described"})
        updated = repo.upsert_by_name(changed)
        assert updated.id == inserted.id
        assert updated.created_at == inserted.created_at
        assert updated.description == "now described"
        assert updated.updated_at > inserted.updated_at
        assert repo.count() == 1

    def test_upsert_of_an_unchanged_declaration_writes_nothing(
        self, db: DatabaseManager[Sync], kind: str
    ) -> None:
        declare, _ = KINDS[kind]
        repo = _repo(db, kind)
        first = repo.upsert_by_name(declare("stable"))
        assert repo.upsert_by_name(declare("stable")) == first

    def test_pages_walk_every_item_exactly_once(self, db: DatabaseManager[Sync], kind: str) -> None:
        declare, _ = KINDS[kind]
        repo = _repo(db, kind)
        names = {f"item {i:02}" for i in range(8)} | {"Ärger", "émile", "zebra", "日本"}
        for name in names:
            repo.create(declare(name))
        seen: list[str] = []
        cursor: str | None = None
        while True:
            page = repo.list(limit=5, cursor=cursor)
            seen.extend(item.name for item in page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert sorted(seen) == sorted(names)
        assert len(seen) == len(names)

    def test_bad_cursor_and_limit_are_validation_errors(
        self, db: DatabaseManager[Sync], kind: str
    ) -> None:
        repo = _repo(db, kind)
        with pytest.raises(ValidationError) as caught:
            repo.list(cursor="garbage!")
        assert caught.value.field == "cursor"
        with pytest.raises(ValidationError) as caught:
            repo.list(cursor=encode_cursor("nul\x00"))
        assert caught.value.field == "cursor"
        with pytest.raises(ValidationError) as caught:
            repo.list(limit=0)
        assert caught.value.field == "limit"

    def test_nul_byte_in_name_is_a_validation_error(self, kind: str) -> None:
        declare, update = KINDS[kind]
        fields = declare("ok").model_dump(exclude_unset=True)
        with pytest.raises(ValidationError) as caught:
            validate_input(type(declare("ok")), {**fields, "name": "bad\x00name"})
        assert caught.value.field == "name"
        with pytest.raises(ValidationError) as caught:
            validate_input(update, {"description": "\x00"})
        assert caught.value.field == "description"


class TestPersonas:
    def test_create_round_trips_every_field(self, db: DatabaseManager[Sync]) -> None:
        sent = PersonaCreate(
            name="Ника",
            description="Дружелюбный помощник 🤖",
            template="Ты — {name}. Отвечай кратко.",
            mode="chat",
            loop_frequency="5m",
            first_message="Привет! Чем помочь?",
            image_path="/img/nika.png",
            is_active=False,
        )
        stored = db.personas.create(sent)
        assert stored.model_dump(exclude={"id", "created_at", "updated_at"}) == sent.model_dump()
        assert db.personas.get(stored.id) == stored

    def test_list_filters_by_activity(self, db: DatabaseManager[Sync]) -> None:
        db.personas.create(PersonaCreate(name="on", template="t"))
        db.personas.create(PersonaCreate(name="off", template="t", is_active=False))
        assert [p.name for p in db.personas.list(active=True).items] == ["on"]
        assert [p.name for p in db.personas.list(active=False).items] == ["off"]
        assert [p.name for p in db.personas.list().items] == ["off", "on"]

    def test_oversized_template_is_too_large(self, db: DatabaseManager[Sync]) -> None:
        huge = "x" * (db.settings.max_content_bytes + 1)
        with pytest.raises(TooLargeError) as caught:
            db.personas.create(PersonaCreate(name="big", template=huge))
        assert caught.value.field == "template"
        assert db.personas.count() == 0

    def test_deleting_a_persona_leaves_its_agents_without_one(
        self, db: DatabaseManager[Sync]
    ) -> None:
        persona = db.personas.create(PersonaCreate(name="p", template="t"))
        agent = db.agents.create(AgentCreate(name="a", persona_id=persona.id))
        conversation = db.conversations.create(ConversationCreate(persona_id=persona.id))
        assert db.personas.delete(persona.id) is True
        assert db.agents.get(agent.id).persona_id is None
        assert db.conversations.get(conversation.id).persona_id is None


class TestModules:
    def test_create_round_trips_every_field(self, db: DatabaseManager[Sync]) -> None:
        sent = ModuleCreate(
            name="расходы",
            type="advanced",
            description="Записывает траты ☕",
            content="Если пользователь потратил деньги, запиши сумму.",
            trigger_pattern=r"(?i)\b(купил|потратил)\b.*?(\d+)",
            execution_context=ExecutionContext.POST_RESPONSE,
            requires_ai_inference=True,
            stage_priority=7,
            is_active=False,
        )
        stored = db.modules.create(sent)
        assert stored.model_dump(exclude={"id", "created_at", "updated_at"}) == sent.model_dump()
        assert db.modules.get(stored.id).execution_context is ExecutionContext.POST_RESPONSE

    def test_content_may_be_empty(self, db: DatabaseManager[Sync]) -> None:
        stored = db.modules.create(ModuleCreate(name="script-only", type="advanced"))
        assert stored.content is None
        assert stored.execution_context is ExecutionContext.ON_DEMAND
        assert stored.stage_priority == 100
        with_content = db.modules.update(stored.id, ModuleUpdate(content="text"))
        assert db.modules.update(with_content.id, ModuleUpdate(content=None)).content is None

    def test_bad_trigger_pattern_is_a_validation_error_naming_the_field(
        self, db: DatabaseManager[Sync]
    ) -> None:
        with pytest.raises(ValidationError) as caught:
            validate_input(ModuleCreate, {"name": "m", "type": "t", "trigger_pattern": "(unclosed"})
        assert caught.value.field == "trigger_pattern"
        with pytest.raises(ValidationError) as caught:
            validate_input(ModuleUpdate, {"trigger_pattern": "[z-a]"})
        assert caught.value.field == "trigger_pattern"
        assert db.modules.count() == 0

    def test_wrong_execution_context_is_a_validation_error(self, db: DatabaseManager[Sync]) -> None:
        with pytest.raises(ValidationError) as caught:
            validate_input(ModuleCreate, {"name": "m", "type": "t", "execution_context": "LATER"})
        assert caught.value.field == "execution_context"
        with pytest.raises(ValidationError) as caught:
            db.modules.list(execution_context="LATER")
        assert caught.value.field == "execution_context"
        with pytest.raises(ValidationError) as caught:
            db.modules.for_context("immediate")
        assert caught.value.field == "execution_context"

    def test_for_context_gives_active_modules_in_stage_order(
        self, db: DatabaseManager[Sync]
    ) -> None:
        for name, context, priority, active in [
            ("late", "IMMEDIATE", 50, True),
            ("early", "IMMEDIATE", 10, True),
            ("also-early", "IMMEDIATE", 10, True),
            ("disabled", "IMMEDIATE", 1, False),
            ("after", "POST_RESPONSE", 1, True),
        ]:
            db.modules.create(
                ModuleCreate(
                    name=name,
                    type="simple",
                    execution_context=ExecutionContext(context),
                    stage_priority=priority,
                    is_active=active,
                )
            )
        ordered = db.modules.for_context(ExecutionContext.IMMEDIATE)
        assert [m.name for m in ordered] == ["also-early", "early", "late"]
        assert [m.name for m in db.modules.for_context("POST_RESPONSE")] == ["after"]
        assert db.modules.for_context("ON_DEMAND") == []

    def test_list_filters_by_context_type_and_activity(self, db: DatabaseManager[Sync]) -> None:
        db.modules.create(ModuleCreate(name="a", type="simple", execution_context="IMMEDIATE"))
        db.modules.create(ModuleCreate(name="b", type="advanced", execution_context="IMMEDIATE"))
        db.modules.create(ModuleCreate(name="c", type="simple", is_active=False))
        immediate = db.modules.list(execution_context="IMMEDIATE")
        assert [m.name for m in immediate.items] == ["a", "b"]
        assert [m.name for m in db.modules.list(type="simple").items] == ["a", "c"]
        assert [m.name for m in db.modules.list(active=False).items] == ["c"]


class TestWorkflows:
    def test_create_round_trips_every_field(self, db: DatabaseManager[Sync]) -> None:
        sent = WorkflowCreate(
            name="отчёт",
            description="Собрать и проверить отчёт",
            steps=["planner", {"agent": "critic", "retries": 2}, "writer"],
            config={"timeout_s": 30.5, "notify": None},
        )
        stored = db.workflows.create(sent)
        assert stored.model_dump(exclude={"id", "created_at", "updated_at"}) == sent.model_dump()
        assert db.workflows.get(stored.id) == stored

    def test_update_replaces_the_steps(self, db: DatabaseManager[Sync]) -> None:
        flow = db.workflows.create(WorkflowCreate(name="w", steps=["a", "b"]))
        changed = db.workflows.update(flow.id, WorkflowUpdate(steps=["b"]))
        assert (changed.steps, changed.config) == (["b"], {})

    def test_oversized_steps_are_too_large(self, db: DatabaseManager[Sync]) -> None:
        with pytest.raises(TooLargeError) as caught:
            db.workflows.create(
                WorkflowCreate(name="w", steps=["x" * db.settings.max_metadata_bytes])
            )
        assert caught.value.field == "steps"
        assert db.workflows.count() == 0


class TestProjectFileSync:
    """Seed 002: a JSON project file is synced into the store by name at every start."""

    PROJECT: dict[str, list[dict[str, Any]]] = {  # noqa: RUF012 - read only
        "tools": [{"name": "weather", "parameters": {"type": "object"}}],
        "agents": [
            {"name": "Weather Agent", "model": "claude", "include_history": True},
            {"name": "Planner", "model_settings": {"temperature": 0.1}},
        ],
        "workflows": [{"name": "Plan trip", "steps": ["Weather Agent", "Planner"]}],
    }

    def _sync(self, db: DatabaseManager[Sync]) -> dict[str, uuid.UUID]:
        ids: dict[str, uuid.UUID] = {}
        for declared in self.PROJECT["tools"]:
            ids[declared["name"]] = db.tools.upsert_by_name(validate_input(ToolCreate, declared)).id
        for declared in self.PROJECT["agents"]:
            agent = db.agents.upsert_by_name(validate_input(AgentCreate, declared))
            db.agents.attach_tool(agent.id, ids["weather"])
            ids[agent.name] = agent.id
        for declared in self.PROJECT["workflows"]:
            flow = db.workflows.upsert_by_name(validate_input(WorkflowCreate, declared))
            ids[flow.name] = flow.id
        return ids

    def test_syncing_twice_changes_nothing(self, db: DatabaseManager[Sync]) -> None:
        first = self._sync(db)
        before = db.agents.list().items
        assert self._sync(db) == first
        assert db.agents.list().items == before
        assert (db.tools.count(), db.agents.count(), db.workflows.count()) == (1, 2, 1)
        assert len(db.tools.list_agents_using(first["weather"]).items) == 2


class TestAsync:
    @pytest.mark.anyio
    async def test_configuration_round_trips_through_the_async_api(
        self, adb: DatabaseManager[Async]
    ) -> None:
        persona = await adb.personas.create(PersonaCreate(name="p", template="t"))
        agent = await adb.agents.upsert_by_name(AgentCreate(name="a", persona_id=persona.id))
        tool = await adb.tools.create(ToolCreate(name="t"))
        assert await adb.agents.attach_tool(agent.id, tool.id) is True
        assert [t.id for t in (await adb.agents.list_tools(agent.id)).items] == [tool.id]
        assert (await adb.tools.record_use(tool.id)).usage_count == 1
        assert await adb.agents.find_by_name("a") == agent
        with pytest.raises(ConflictError):
            await adb.agents.create(AgentCreate(name="a"))
        page = await adb.agents.list(persona_id=persona.id)
        assert [a.id for a in page.items] == [agent.id]
