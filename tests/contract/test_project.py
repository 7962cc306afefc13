"""Configuration as code: a project file synced into every store, exported back, compared."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from agentkeep.db.service import Intent
from agentkeep.errors import TooLargeError, ValidationError
from agentkeep.project import (
    Project,
    SyncReport,
    export_project,
    parse_project,
    project_schema,
    sync_project,
    validate_project,
)
from agentkeep.project.model import DOCUMENTS, KINDS, TEXTS
from agentkeep.repositories.base import Sync
from agentkeep.repositories.facade import DatabaseManager

DOCUMENT: dict[str, Any] = {
    "personas": [{"name": "accountant", "template": "You keep the books."}],
    "modules": [{"name": "tone", "type": "style", "content": "Be brief."}],
    "tools": [
        {"name": "lookup_rate", "parameters": {"type": "object"}},
        {"name": "convert", "description": "Convert an amount"},
    ],
    "agents": [
        {
            "name": "bookkeeper",
            "persona": "accountant",
            "tools": ["lookup_rate", "convert"],
            "modules": ["tone"],
            "provider": "echo",
            "model_settings": {"temperature": 0.2},
        },
        {"name": "helper", "include_history": False},
    ],
    "workflows": [{"name": "close-month", "steps": ["bookkeeper", "helper"]}],
}


def sync(db: DatabaseManager[Sync], document: dict[str, Any], **options: bool) -> SyncReport:
    project = validate_project(document, "project.json")
    intent: Intent = "read" if options.get("dry_run") else "write"
    return db.run(lambda uow: sync_project(uow, project, source="project.json", **options), intent)


def export(db: DatabaseManager[Sync]) -> dict[str, Any]:
    return db.run(export_project, "read").document()


def counts(report: SyncReport, kind: str) -> tuple[int, int, int, int]:
    r = report.kind(kind)
    return len(r.created), len(r.updated), len(r.unchanged), len(r.deleted)


class TestSync:
    def test_sync_creates_everything_with_references_by_name(
        self, db: DatabaseManager[Sync]
    ) -> None:
        report = sync(db, DOCUMENT)
        assert counts(report, "agents") == (2, 0, 0, 0)
        assert counts(report, "tools") == (2, 0, 0, 0)
        agent = db.agents.find_by_name("bookkeeper")
        assert agent is not None
        persona = db.personas.get(agent.persona_id or "")
        assert persona.name == "accountant"
        assert [t.name for t in db.agents.list_tools(agent.id).items] == ["convert", "lookup_rate"]
        assert agent.metadata == {}
        assert [m.name for m in db.agents.list_modules(agent.id)] == ["tone"]
        assert agent.model_settings == {"temperature": 0.2}

    def test_a_second_sync_changes_nothing(self, db: DatabaseManager[Sync]) -> None:
        sync(db, DOCUMENT)
        before = db.agents.find_by_name("bookkeeper")
        report = sync(db, DOCUMENT)
        assert report.changes == 0
        assert counts(report, "agents") == (0, 0, 2, 0)
        after = db.agents.find_by_name("bookkeeper")
        assert before is not None
        assert after is not None
        assert after.updated_at == before.updated_at

    def test_a_changed_entry_is_updated_and_its_fields_named(
        self, db: DatabaseManager[Sync]
    ) -> None:
        sync(db, DOCUMENT)
        changed = json.loads(json.dumps(DOCUMENT))
        changed["agents"][0]["tools"] = ["convert"]
        changed["agents"][0]["model"] = "gpt-4o-mini"
        report = sync(db, changed)
        assert report.agents.updated == ["bookkeeper"]
        assert report.agents.changed_fields == {"bookkeeper": ["model", "tools"]}
        agent = db.agents.find_by_name("bookkeeper")
        assert agent is not None
        assert [t.name for t in db.agents.list_tools(agent.id).items] == ["convert"]

    def test_the_order_of_an_agents_tools_is_not_a_change(self, db: DatabaseManager[Sync]) -> None:
        sync(db, DOCUMENT)
        reordered = json.loads(json.dumps(DOCUMENT))
        reordered["agents"][0]["tools"].reverse()
        assert sync(db, reordered).changes == 0

    def test_without_prune_what_the_file_leaves_out_stays(self, db: DatabaseManager[Sync]) -> None:
        sync(db, DOCUMENT)
        report = sync(db, {"agents": [{"name": "helper", "include_history": False}]})
        assert report.changes == 0
        assert db.agents.count() == 2

    def test_prune_deletes_what_the_file_leaves_out(self, db: DatabaseManager[Sync]) -> None:
        sync(db, DOCUMENT)
        smaller = {"tools": DOCUMENT["tools"][:1], "agents": [DOCUMENT["agents"][1]]}
        report = sync(db, smaller, prune=True)
        assert report.agents.deleted == ["bookkeeper"]
        assert report.tools.deleted == ["convert"]
        assert report.personas.deleted == ["accountant"]
        assert report.workflows.deleted == ["close-month"]
        assert export(db) == smaller

    def test_a_dry_run_reports_the_same_and_writes_nothing(self, db: DatabaseManager[Sync]) -> None:
        dry = sync(db, DOCUMENT, dry_run=True)
        assert dry.dry_run
        assert db.agents.count() == 0
        assert db.tools.count() == 0
        real = sync(db, DOCUMENT)
        assert dry.model_dump(exclude={"dry_run"}) == real.model_dump(exclude={"dry_run"})

    def test_an_agent_may_name_what_is_already_stored(self, db: DatabaseManager[Sync]) -> None:
        sync(db, DOCUMENT)
        report = sync(db, {"agents": [{"name": "second", "tools": ["convert"]}]})
        assert report.agents.created == ["second"]

    @pytest.mark.parametrize(
        ("reference", "path"),
        [
            ({"persona": "nobody"}, "agents[0].persona"),
            ({"tools": ["convert", "missing"]}, "agents[0].tools[1]"),
            ({"modules": ["missing"]}, "agents[0].modules[0]"),
        ],
    )
    def test_an_unknown_reference_is_refused_and_nothing_is_written(
        self, db: DatabaseManager[Sync], reference: dict[str, Any], path: str
    ) -> None:
        document = {
            "tools": [{"name": "convert"}],
            "agents": [{"name": "broken", **reference}],
        }
        with pytest.raises(ValidationError) as caught:
            sync(db, document)
        assert caught.value.field == path
        assert caught.value.message.startswith(f"project.json: {path}: there is no")
        assert db.tools.count() == 0

    @pytest.mark.parametrize(
        ("steps", "path", "message"),
        [
            (["helper", "nobody"], "workflows[0].steps[1]", 'there is no agent named "nobody"'),
            (
                ["helper", {"agent": "support", "retries": 2}],
                "workflows[0].steps[1].agent",
                'there is no agent named "support"',
            ),
            (
                [{"tool": "missing"}],
                "workflows[0].steps[0].tool",
                'there is no tool named "missing"',
            ),
            ([{"agent": 7}], "workflows[0].steps[0].agent", "must be the name of an agent"),
            ([{"tool": None}], "workflows[0].steps[0].tool", "must be the name of a tool"),
            (
                ["helper", {"wait": 5}],
                "workflows[0].steps[1]",
                "a step object names an `agent` or a `tool`",
            ),
            (
                [3],
                "workflows[0].steps[0]",
                "a step is an agent's name or an object naming its agent under `agent` and/or "
                "a tool under `tool`",
            ),
        ],
    )
    def test_a_workflow_step_naming_nothing_is_refused_and_nothing_is_written(
        self, db: DatabaseManager[Sync], steps: list[Any], path: str, message: str
    ) -> None:
        document = {
            "tools": [{"name": "convert"}],
            "agents": [{"name": "helper"}],
            "workflows": [{"name": "w", "steps": steps}, {"name": "fine", "steps": ["helper"]}],
        }
        with pytest.raises(ValidationError) as caught:
            sync(db, document)
        assert caught.value.field == path
        assert caught.value.message == f"project.json: {path}: {message}"
        assert (db.tools.count(), db.agents.count(), db.workflows.count()) == (0, 0, 0)

    def test_workflow_steps_may_name_agents_and_tools_of_the_file_or_the_store(
        self, db: DatabaseManager[Sync]
    ) -> None:
        sync(db, DOCUMENT)
        steps = [
            "helper",  # stored
            {"agent": "intake", "retries": 2},  # in the file
            {"tool": "convert"},  # stored
            {"agent": "bookkeeper", "tool": "lookup_rate"},
            {"tool": "convert", "wait": 5, "name": "not a reference"},  # keys of its own
        ]
        document = {
            "agents": [{"name": "intake"}],
            "workflows": [{"name": "intake-flow", "steps": steps}],
        }
        report = sync(db, document)
        assert report.workflows.created == ["intake-flow"]
        stored = db.workflows.find_by_name("intake-flow")
        assert stored is not None
        assert stored.steps == steps

    def test_with_prune_a_workflow_step_must_name_an_agent_of_the_file(
        self, db: DatabaseManager[Sync]
    ) -> None:
        sync(db, DOCUMENT)
        document = {"workflows": [{"name": "w", "steps": [{"agent": "helper"}]}]}
        with pytest.raises(ValidationError) as caught:
            sync(db, document, prune=True)
        assert caught.value.field == "workflows[0].steps[0].agent"
        assert db.workflows.find_by_name("w") is None
        assert db.agents.count() == 2

    def test_a_dry_run_refuses_a_workflow_step_naming_nothing_too(
        self, db: DatabaseManager[Sync]
    ) -> None:
        with pytest.raises(ValidationError) as caught:
            sync(db, {"workflows": [{"name": "w", "steps": ["ghost"]}]}, dry_run=True)
        assert caught.value.field == "workflows[0].steps[0]"

    def test_an_entry_over_the_stores_limit_is_refused_by_path_and_nothing_is_written(
        self, db: DatabaseManager[Sync]
    ) -> None:
        big = {"x": "y" * db.settings.max_metadata_bytes}
        document = {"tools": [{"name": "fine"}, {"name": "big", "config": big}]}
        with pytest.raises(TooLargeError) as caught:
            sync(db, document)
        assert caught.value.field == "tools[1].config"
        assert caught.value.message.startswith("project.json: tools[1].config is ")
        assert db.tools.count() == 0

    def test_the_limits_checked_are_those_the_repositories_declare(
        self, db: DatabaseManager[Sync]
    ) -> None:
        for kind in KINDS:
            repository = getattr(db, kind)
            assert TEXTS[kind] == repository._texts
            assert DOCUMENTS.get(kind, ()) == repository._documents

    def test_with_prune_a_reference_must_be_in_the_file(self, db: DatabaseManager[Sync]) -> None:
        sync(db, DOCUMENT)
        with pytest.raises(ValidationError) as caught:
            sync(db, {"agents": [{"name": "x", "tools": ["convert"]}]}, prune=True)
        assert caught.value.field == "agents[0].tools[0]"
        assert db.agents.count() == 2


class TestExport:
    def test_export_writes_the_store_as_a_project_file(self, db: DatabaseManager[Sync]) -> None:
        sync(db, DOCUMENT)
        exported = export(db)
        assert exported["agents"][0]["tools"] == ["convert", "lookup_rate"]
        assert exported["agents"][0]["modules"] == ["tone"]
        assert "metadata" not in exported["agents"][0]
        assert [t["name"] for t in exported["tools"]] == ["convert", "lookup_rate"]
        assert validate_project(exported).document() == exported

    def test_a_module_deleted_since_is_left_out_so_the_export_syncs_back(
        self, db: DatabaseManager[Sync]
    ) -> None:
        sync(db, DOCUMENT)
        tone = db.modules.find_by_name("tone")
        assert tone is not None
        db.modules.delete(tone.id)
        exported = export(db)
        assert "modules" not in exported["agents"][0]
        assert sync(db, exported).changes == 0

    def test_a_workflow_naming_an_agent_deleted_since_syncs_back_unchanged(
        self, db: DatabaseManager[Sync]
    ) -> None:
        from agentkeep.models.config import WorkflowCreate

        sync(db, DOCUMENT)
        helper = db.agents.find_by_name("helper")
        assert helper is not None
        db.agents.delete(helper.id)
        steps: list[Any] = [{"agent": "never-made", "tool": "lookup_rate"}, "bookkeeper"]
        db.workflows.create(WorkflowCreate(name="registered", steps=steps))
        exported = export(db)
        assert exported["workflows"][0]["steps"] == ["bookkeeper", "helper"]  # kept as stored
        assert sync(db, exported).changes == 0
        assert sync(db, exported, prune=True).changes == 0
        changed = json.loads(json.dumps(exported))
        changed["workflows"][0]["description"] = "a change: its steps are checked again"
        with pytest.raises(ValidationError) as refused:
            sync(db, changed)
        assert refused.value.field == "workflows[0].steps[1]"
        assert 'there is no agent named "helper"' in refused.value.message

    def test_what_the_api_registers_shows_up_in_the_export(self, db: DatabaseManager[Sync]) -> None:
        from agentkeep.models.config import AgentCreate

        sync(db, DOCUMENT)
        db.agents.create(AgentCreate(name="registered-later", provider="echo"))
        names = [a["name"] for a in export(db)["agents"]]
        assert "registered-later" in names


text = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=10)
names = st.text(alphabet="abcdefghij-", min_size=1, max_size=6)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**31), 2**31) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6,
)


def steps(agent_names: list[str], tool_names: list[str]) -> st.SearchStrategy[Any]:
    """Workflow steps whose references name the project's agents and tools: a name, or an
    object naming an agent and/or a tool with keys of the workflow's own."""
    keys = text.filter(lambda k: k not in ("agent", "tool"))
    own = st.dictionaries(keys, json_values, max_size=2)
    found: st.SearchStrategy[Any] = st.nothing()
    if agent_names:
        agent = st.sampled_from(agent_names)
        found |= agent | st.builds(lambda a, more: {**more, "agent": a}, agent, own)
    if tool_names:
        tool = st.sampled_from(tool_names)
        found |= st.builds(lambda t, more: {**more, "tool": t}, tool, own)
    return found


CHECKED_SETTINGS = ("api_key", "api_key_env", "history_messages", "history_tokens", "history_scope")
"""``model_settings`` keys whose values are checked (tested on their own)."""


@st.composite
def projects(draw: st.DrawFn) -> dict[str, Any]:
    tool_names = draw(st.lists(names, unique=True, max_size=3))
    persona_names = draw(st.lists(names, unique=True, max_size=2))
    module_names = draw(st.lists(names, unique=True, max_size=2))
    agents = []
    agent_names = draw(st.lists(names, unique=True, max_size=3))
    for name in agent_names:
        agents.append(
            {
                "name": name,
                "description": draw(st.none() | text),
                "persona": draw(
                    st.none() | st.sampled_from(persona_names) if persona_names else st.none()
                ),
                "tools": draw(st.lists(st.sampled_from(tool_names), unique=True))
                if tool_names
                else [],
                "modules": draw(st.lists(st.sampled_from(module_names), unique=True))
                if module_names
                else [],
                "model_settings": draw(
                    st.dictionaries(
                        text.filter(lambda k: k not in CHECKED_SETTINGS), json_values, max_size=2
                    )
                ),
                "include_history": draw(st.booleans()),
            }
        )
    return {
        "personas": [{"name": n, "template": draw(text)} for n in persona_names],
        "modules": [{"name": n, "type": "style"} for n in module_names],
        "tools": [
            {
                "name": n,
                "config": draw(st.dictionaries(text, json_values, max_size=2)),
            }
            for n in tool_names
        ],
        "agents": agents,
        "workflows": [
            {"name": n, "steps": draw(st.lists(steps(agent_names, tool_names), max_size=3))}
            if agent_names or tool_names
            else {"name": n, "steps": []}
            for n in draw(st.lists(names, unique=True, max_size=2))
        ],
    }


@hypothesis_settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=projects())
def test_export_then_sync_round_trips_exactly(
    db: DatabaseManager[Sync], document: dict[str, Any]
) -> None:
    sync(db, document, prune=True)  # the store now declares exactly the document
    exported = export(db)
    assert sync(db, exported).changes == 0
    assert sync(db, exported, prune=True).changes == 0
    assert export(db) == exported
    assert validate_project(exported).document() == exported
    declared = validate_project(document)
    for agent in declared.agents:
        agent.tools.sort()
    by_name = {kind: sorted(exported.get(kind, []), key=lambda e: e["name"]) for kind in exported}
    expected = declared.document()
    assert by_name == {k: sorted(v, key=lambda e: e["name"]) for k, v in expected.items()}


class TestReadingAFile:
    def parse(
        self, data: bytes | str, *, yaml_format: bool = False, limit: int = 100_000
    ) -> Project:
        raw = data.encode() if isinstance(data, str) else data
        return parse_project(raw, "team.json", yaml_format=yaml_format, limit=limit)

    def refused(self, data: bytes | str, **options: Any) -> ValidationError:
        with pytest.raises(ValidationError) as caught:
            self.parse(data, **options)
        assert caught.value.message.startswith("team.json: ")
        return caught.value

    def test_json_and_yaml_read_the_same(self) -> None:
        yaml_text = """
personas:
  - name: accountant
    template: You keep the books.
agents:
  - name: bookkeeper
    persona: accountant
    model_settings: {temperature: 0.2}
"""
        from_yaml = self.parse(yaml_text, yaml_format=True)
        from_json = self.parse(json.dumps(from_yaml.document()))
        assert from_yaml == from_json
        assert from_yaml.agents[0].persona == "accountant"

    def test_a_wrong_type_names_the_path_and_field(self) -> None:
        error = self.refused(json.dumps({"agents": [{"name": "a"}, {"name": "b", "tools": [1]}]}))
        assert error.field == "agents[1].tools[0]"

    def test_an_unknown_field_is_refused(self) -> None:
        error = self.refused(json.dumps({"agents": [{"name": "a", "persona_id": "x"}]}))
        assert error.field == "agents[0].persona_id"

    def test_duplicate_names_are_refused(self) -> None:
        error = self.refused(json.dumps({"tools": [{"name": "t"}, {"name": "t"}]}))
        assert error.field == "tools[1].name"
        assert "tools[0]" in error.message

    def test_a_tool_listed_twice_is_refused(self) -> None:
        error = self.refused(json.dumps({"agents": [{"name": "a", "tools": ["t", "t"]}]}))
        assert error.field == "agents[0].tools[1]"

    def test_bad_json_says_where(self) -> None:
        error = self.refused('{"agents": [}')
        assert "not valid JSON" in error.message
        assert "line 1" in error.message

    def test_a_key_given_twice_is_refused(self) -> None:
        assert "given twice" in self.refused('{"agents": [], "agents": []}').message
        assert "given twice" in self.refused("agents: []\nagents: []\n", yaml_format=True).message

    def test_bad_yaml_says_where(self) -> None:
        error = self.refused("agents: [\n  - name: a\n", yaml_format=True)
        assert "not valid YAML" in error.message
        assert "line" in error.message

    def test_yaml_aliases_are_refused(self) -> None:
        text = "tools:\n  - &t {name: a}\n  - *t\n"
        assert "aliases" in self.refused(text, yaml_format=True).message

    def test_yaml_values_json_has_not_are_refused(self) -> None:
        error = self.refused(
            "tools:\n  - name: a\n    config: {when: 2024-01-01}\n", yaml_format=True
        )
        assert error.field == "tools[0].config.when"

    def test_a_file_that_is_not_utf8_is_refused(self) -> None:
        assert "not UTF-8" in self.refused(b'{"agents": [{"name": "\xff"}]}').message

    def test_a_document_that_is_not_an_object_is_refused(self) -> None:
        assert "must be an object" in self.refused("[1, 2]").message

    def test_a_nul_in_a_document_names_its_path(self) -> None:
        error = self.refused(json.dumps({"tools": [{"name": "t", "config": {"x": "\x00"}}]}))
        assert error.field == "tools[0].config"

    def test_nan_is_refused(self) -> None:
        self.refused('{"tools": [{"name": "t", "config": {"x": NaN}}]}')

    def test_a_deeply_nested_file_is_refused(self) -> None:
        self.refused("[" * 100_000 + "]" * 100_000, limit=1_000_000)

    def test_deeply_nested_yaml_is_refused(self) -> None:
        self.refused("tools: " + "[" * 50_000 + "]" * 50_000, yaml_format=True, limit=1_000_000)

    def test_a_huge_file_is_refused(self) -> None:
        with pytest.raises(TooLargeError) as caught:
            self.parse(json.dumps({"tools": [{"name": "t" * 50}] * 10_000}), limit=100_000)
        assert "at most 100,000" in caught.value.message

    def test_the_schema_describes_the_file(self) -> None:
        schema = project_schema()
        assert set(schema["properties"]) == {
            "$schema",
            "personas",
            "modules",
            "tools",
            "agents",
            "workflows",
        }
        assert schema["additionalProperties"] is False


class TestAgentModules:
    """The modules an agent runs are links, in the order declared; the turn runs only those."""

    def test_set_list_and_replace_in_order(self, db: DatabaseManager[Sync]) -> None:
        from agentkeep.models.config import AgentCreate, ModuleCreate

        agent = db.agents.create(AgentCreate(name="a"))
        one = db.modules.create(ModuleCreate(name="one", type="style"))
        two = db.modules.create(ModuleCreate(name="two", type="style"))
        assert db.agents.list_modules(agent.id) == []
        assert [m.name for m in db.agents.set_modules(agent.id, [two.id, one.id])] == [
            "two",
            "one",
        ]
        assert [m.name for m in db.agents.list_modules(agent.id)] == ["two", "one"]
        assert db.agents.modules_of_each([agent.id]) == {agent.id: ["two", "one"]}
        db.agents.set_modules(agent.id, [one.id])
        assert [m.name for m in db.agents.list_modules(agent.id)] == ["one"]
        db.modules.delete(one.id)  # a deleted module leaves its agents
        assert db.agents.list_modules(agent.id) == []

    def test_bad_input_changes_nothing(self, db: DatabaseManager[Sync]) -> None:
        import uuid

        from agentkeep import NotFoundError, ValidationError
        from agentkeep.models.config import AgentCreate, ModuleCreate

        agent = db.agents.create(AgentCreate(name="a"))
        one = db.modules.create(ModuleCreate(name="one", type="style"))
        db.agents.set_modules(agent.id, [one.id])
        with pytest.raises(ValidationError):
            db.agents.set_modules(agent.id, [one.id, one.id])
        with pytest.raises(NotFoundError) as missing:
            db.agents.set_modules(agent.id, [uuid.uuid4()])
        assert missing.value.field == "module_ids"
        with pytest.raises(NotFoundError):
            db.agents.set_modules(uuid.uuid4(), [])
        with pytest.raises(NotFoundError):
            db.agents.list_modules(uuid.uuid4())
        assert [m.name for m in db.agents.list_modules(agent.id)] == ["one"]

    def test_sync_sets_and_reorders_modules(self, db: DatabaseManager[Sync]) -> None:
        document = {
            "modules": [{"name": "x", "type": "style"}, {"name": "y", "type": "style"}],
            "agents": [{"name": "a", "modules": ["y", "x"]}],
        }
        sync(db, document)
        agent = db.agents.find_by_name("a")
        assert agent is not None
        assert [m.name for m in db.agents.list_modules(agent.id)] == ["y", "x"]
        assert sync(db, document).changes == 0
        document["agents"] = [{"name": "a", "modules": ["x"]}]
        assert sync(db, document).changes == 1
        assert [m.name for m in db.agents.list_modules(agent.id)] == ["x"]
        assert export(db)["agents"][0]["modules"] == ["x"]
