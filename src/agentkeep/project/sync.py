"""Sync a project into a store, export a store as a project, and the difference between them.

All three are functions over one unit of work (``db.run(work)``): the sync reads what is stored,
compares it entry by entry, by name, with what the project declares, and writes only what
differs, so it commits together or not at all, and a second sync of the same file writes nothing.
The comparison is made between documents: the store is exported into the project file's own
shape (names for references, defaults filled in) and each declared entry is compared with the
exported one of the same name. A dry run is the same comparison with the writes left out.

An agent's tools are a set (exported by name, in order); its modules keep the order declared.
References (an agent's persona, tools and modules; a workflow step's agent and tool) must name
an entry of the file or, unless pruning, one already stored; one that names nothing is refused,
naming its path, before anything is written.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pydantic import Field

from agentkeep.config import Settings
from agentkeep.errors import ValidationError
from agentkeep.models.common import Input, Model, Page, check_json, check_text_size
from agentkeep.models.config import Agent, AgentCreate
from agentkeep.project.model import (
    DOCUMENTS,
    ENTRY_TYPES,
    KINDS,
    TEXTS,
    AgentEntry,
    Entry,
    Project,
    invalid,
    read_project,
)
from agentkeep.repositories.base import Async, in_worker_thread
from agentkeep.repositories.facade import DatabaseManager, Unit

T = TypeVar("T")


class KindReport(Model):
    """What a sync does (or would do) to one kind, by name."""

    created: list[str] = Field(default_factory=list)
    updated: list[str] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list)
    deleted: list[str] = Field(default_factory=list)
    changed_fields: dict[str, list[str]] = Field(
        default_factory=dict, description="for each updated entry, the fields that differ"
    )


class SyncReport(Model):
    """What a sync did, or with ``dry_run`` would do, per kind."""

    dry_run: bool = False
    prune: bool = False
    personas: KindReport = Field(default_factory=KindReport)
    modules: KindReport = Field(default_factory=KindReport)
    tools: KindReport = Field(default_factory=KindReport)
    agents: KindReport = Field(default_factory=KindReport)
    workflows: KindReport = Field(default_factory=KindReport)

    def kind(self, name: str) -> KindReport:
        report: KindReport = getattr(self, name)
        return report

    @property
    def changes(self) -> int:
        """How many entries a sync creates, updates or deletes."""
        return sum(len(r.created) + len(r.updated) + len(r.deleted) for r in map(self.kind, KINDS))


@dataclass
class Stored:
    """The store as a project, with the id of each entry by kind and name."""

    project: Project
    ids: dict[str, dict[str, uuid.UUID]] = field(default_factory=dict)
    agent_tools: dict[str, set[str]] = field(default_factory=dict)
    agent_modules: dict[str, list[str]] = field(default_factory=dict)


def export_project(uow: Unit) -> Project:
    """Everything the store declares, as a project file (each kind ordered by name)."""
    return read_stored(uow).project


def read_stored(uow: Unit) -> Stored:
    """What the store declares, read in the unit ``uow`` (one state of the store), with ids."""
    items: dict[str, list[Any]] = {
        kind: _everything(uow, getattr(uow, kind).list) for kind in KINDS
    }
    tools_of: dict[uuid.UUID, list[str]] = {agent.id: [] for agent in items["agents"]}
    using = uow.tools.agents_using_each([tool.id for tool in items["tools"]])
    for tool in items["tools"]:  # in name order, so each agent's list is too
        for agent in using[tool.id]:
            tools_of[agent.id].append(tool.name)
    persona_names = {persona.id: persona.name for persona in items["personas"]}
    modules_of = uow.agents.modules_of_each([agent.id for agent in items["agents"]])
    document = {kind: [_declared(item, kind) for item in items[kind]] for kind in KINDS}
    document["agents"] = [
        _agent_entry(agent, persona_names, tools_of[agent.id], modules_of[agent.id])
        for agent in items["agents"]
    ]
    return Stored(
        Project.model_validate(document),
        {kind: {item.name: item.id for item in found} for kind, found in items.items()},
        {agent.name: set(tools_of[agent.id]) for agent in items["agents"]},
        {agent.name: modules_of[agent.id] for agent in items["agents"]},
    )


def _agent_entry(
    agent: Agent,
    persona_names: dict[uuid.UUID, str],
    tools: list[str],
    modules: list[str],
) -> dict[str, Any]:
    """A stored agent as a project file declares it: names for its persona, tools, modules."""
    return {
        **_declared(agent, "agents"),
        "persona": None if agent.persona_id is None else persona_names.get(agent.persona_id),
        "tools": tools,
        "modules": modules,
    }


def _declared(item: Model, kind: str) -> dict[str, Any]:
    fields = set(ENTRY_TYPES[kind].model_fields) - {"script"}  # stored by old releases, never run
    return item.model_dump(include=fields)


def _everything(uow: Unit, list_page: Callable[..., Page[T]]) -> list[T]:
    found: list[T] = []
    cursor: str | None = None
    while True:
        page = list_page(limit=uow.settings.max_page_size, cursor=cursor)
        found.extend(page.items)
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


def compare(project: Project, stored: Project, *, prune: bool, dry_run: bool = False) -> SyncReport:
    """What syncing ``project`` into a store holding ``stored`` changes, per kind and name."""
    kinds: dict[str, KindReport] = {}
    for kind in KINDS:
        current = {entry.name: _comparable(entry) for entry in stored.entries(kind)}
        found: dict[str, list[str]] = {"created": [], "updated": [], "unchanged": []}
        changed_fields: dict[str, list[str]] = {}
        for entry in project.entries(kind):
            before = current.get(entry.name)
            after = _comparable(entry)
            if before is None:
                found["created"].append(entry.name)
            elif before == after:
                found["unchanged"].append(entry.name)
            else:
                found["updated"].append(entry.name)
                changed_fields[entry.name] = sorted(
                    key for key in after if before.get(key) != after[key]
                )
        declared = {entry.name for entry in project.entries(kind)}
        deleted = sorted(name for name in current if name not in declared) if prune else []
        kinds[kind] = KindReport(**found, deleted=deleted, changed_fields=changed_fields)
    return SyncReport(dry_run=dry_run, prune=prune, **kinds)


def _comparable(entry: Input) -> dict[str, Any]:
    document = entry.model_dump(mode="json", by_alias=True)
    if isinstance(entry, AgentEntry):
        document["tools"] = sorted(entry.tools)
    return document


def check_references(project: Project, stored: Project, *, prune: bool, source: str) -> None:
    """Each agent's persona, tools and modules, and each workflow step's agent and tool, must
    name an entry of the file or (unless pruning, which deletes what the file leaves out) one
    already stored. A workflow the store already holds as declared may name what exists
    nowhere (an agent deleted after it was stored): syncing it back changes nothing, so an
    export always syncs back.

    Raises:
        ValidationError: naming the first reference that names nothing, by its path
            (``agents[0].tools[1]``, ``workflows[0].steps[1].agent``).
    """
    known: dict[str, set[str]] = {}
    held: dict[str, set[str]] = {}
    for kind in ("personas", "tools", "modules", "agents"):
        held[kind] = {e.name for e in stored.entries(kind)}
        known[kind] = {e.name for e in project.entries(kind)} | (set() if prune else held[kind])
    kept = _unchanged_workflows(project, stored)
    for kind, path, name in _references(project):
        if not isinstance(name, str):
            raise invalid(source, path, f"must be the name of {_NOUNS[kind]}")
        if path.split(".")[0] in kept and name not in held[kind]:
            continue  # stored so (its agent since deleted, say): syncing it back changes nothing
        if name not in known[kind]:
            noun = kind.removesuffix("s")
            raise invalid(
                source, path, f"there is no {noun} named {json.dumps(name, ensure_ascii=False)}"
            )


def _unchanged_workflows(project: Project, stored: Project) -> set[str]:
    """The paths (``workflows[2]``) of the workflows the store already holds as declared."""
    current = {entry.name: _comparable(entry) for entry in stored.workflows}
    return {
        f"workflows[{index}]"
        for index, workflow in enumerate(project.workflows)
        if current.get(workflow.name) == _comparable(workflow)
    }


_NOUNS = {"personas": "a persona", "tools": "a tool", "modules": "a module", "agents": "an agent"}

STEP_REFERENCES = {"agent": "agents", "tool": "tools"}
"""The keys of a workflow step object that name another entry, and the kind each names. A step
given as a string is an agent's name; any other key of a step object is the workflow's own."""


def _references(project: Project) -> Iterator[tuple[str, str, object]]:
    """(kind, path, the name given) for every reference the project makes, in file order."""
    for index, agent in enumerate(project.agents):
        if agent.persona is not None:
            yield "personas", f"agents[{index}].persona", agent.persona
        for field_name in ("tools", "modules"):
            names: list[str] = getattr(agent, field_name)
            for i, name in enumerate(names):
                yield field_name, f"agents[{index}].{field_name}[{i}]", name
    for index, workflow in enumerate(project.workflows):
        for i, step in enumerate(workflow.steps):
            path = f"workflows[{index}].steps[{i}]"
            if isinstance(step, str):
                yield "agents", path, step
            elif isinstance(step, dict):
                for key, kind in STEP_REFERENCES.items():
                    if key in step:
                        yield kind, f"{path}.{key}", step[key]


def check_limits(project: Project, settings: Settings, source: str) -> None:
    """Refuse, naming the entry, what the store would refuse as too large (before any write)."""
    checks = [(DOCUMENTS, check_json, settings.max_metadata_bytes)]
    checks.append((TEXTS, check_text_size, settings.max_content_bytes))
    for fields_of, check, limit in checks:
        for kind, fields in fields_of.items():
            for index, entry in enumerate(project.entries(kind)):
                for name in fields:
                    path = f"{kind}[{index}].{name}"
                    try:
                        check(getattr(entry, name), limit, path)
                    except ValidationError as exc:
                        raise type(exc)(f"{source}: {exc.message}", field=path) from None


def sync_project(
    uow: Unit,
    project: Project,
    *,
    prune: bool = False,
    dry_run: bool = False,
    source: str = "project",
) -> SyncReport:
    """Make the store declare what ``project`` declares, by name, in the unit ``uow``.

    Upserts what is new or different, leaves what matches untouched and, with ``prune``, deletes
    what the project leaves out. Run it in one ``"write"`` unit (``db.run(work)``) so that it
    commits whole or not at all; a ``dry_run`` writes nothing and may run in a ``"read"`` unit.

    Raises:
        ValidationError: an agent names a persona, tool or module that does not exist, or a
            workflow step an agent or tool that does not.
        TooLargeError: an entry's text or JSON document is larger than the store's limit.
    """
    check_limits(project, uow.settings, source)
    stored = read_stored(uow)
    check_references(project, stored.project, prune=prune, source=source)
    report = compare(project, stored.project, prune=prune, dry_run=dry_run)
    if not dry_run:
        _apply(uow, project, stored, report)
    return report


def _apply(uow: Unit, project: Project, stored: Stored, report: SyncReport) -> None:
    """Write what ``report`` says changes: what is referred to first, deletions last (what
    refers to others first)."""
    ids = stored.ids
    for kind in ("personas", "modules", "tools"):
        _upsert(getattr(uow, kind), project.entries(kind), report.kind(kind), ids[kind])
    for agent in _changing(project.agents, report.agents):
        declaration = AgentCreate(
            **agent.model_dump(exclude={"persona", "tools", "modules"}),
            persona_id=None if agent.persona is None else ids["personas"][agent.persona],
        )
        agent_id = ids["agents"][agent.name] = uow.agents.upsert_by_name(declaration).id
        before = stored.agent_tools.get(agent.name, set())
        for name in sorted(set(agent.tools) - before):
            uow.agents.attach_tool(agent_id, ids["tools"][name])
        for name in sorted(before - set(agent.tools)):
            uow.agents.detach_tool(agent_id, ids["tools"][name])
        if list(agent.modules) != stored.agent_modules.get(agent.name, []):
            uow.agents.set_modules(agent_id, [ids["modules"][name] for name in agent.modules])
    _upsert(uow.workflows, project.workflows, report.workflows, ids["workflows"])
    for kind in reversed(KINDS):
        for name in report.kind(kind).deleted:
            getattr(uow, kind).delete(ids[kind][name])


class Named(Protocol):
    @property
    def name(self) -> str: ...


N = TypeVar("N", bound=Named)


def _changing(entries: Sequence[N], result: KindReport) -> Iterator[N]:
    changing = {*result.created, *result.updated}
    return (entry for entry in entries if entry.name in changing)


def _upsert(
    repository: Any, entries: Sequence[Entry], result: KindReport, ids: dict[str, uuid.UUID]
) -> None:
    for entry in _changing(entries, result):
        ids[entry.name] = repository.upsert_by_name(entry).id


async def sync_file(db: DatabaseManager[Async], path: Path) -> SyncReport:
    """Read the project file at ``path`` and sync it into ``db`` in one transaction (what a
    server does at start with ``AGENTKEEP_CONFIG_FILE``, e.g. to fill its in-memory store)."""
    limit = db.settings.max_request_bytes
    project = await in_worker_thread(read_project, path, limit=limit)
    return await db.run(lambda uow: sync_project(uow, project, source=str(path)))
