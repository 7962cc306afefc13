"""The project file: personas, modules, tools, agents and workflows declared by name.

A team keeps its configuration in one JSON or YAML document in git and syncs it into a store
(``agentkeep config sync``). Each entry is validated by the input model the API uses for the same
kind (``PersonaCreate``, ``ModuleCreate``, ``ToolCreate``, ``WorkflowCreate``); an agent is an
``AgentCreate`` whose persona, tools and modules are named instead of given by id, so one file works
on any store.

Reading a file (:func:`parse_project`) refuses, with a ``ValidationError`` that names the file, the
path inside it (``agents[2].tools[0]``) and the field: bytes that are not UTF-8, bad JSON or YAML
(with line and column), a document larger than the limit, a key given twice in one object, YAML
aliases (one alias can expand into an exponentially large document), wrong types, and two entries
of one kind with the same name. References between entries are checked when the file is synced,
against the file and the store (:mod:`agentkeep.project.sync`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # PyYAML ships no type hints
from pydantic import ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from agentkeep.errors import TooLargeError, ValidationError
from agentkeep.models.common import (
    Input,
    JSONObject,
    Name,
    Text,
    json_problem,
    printable,
    reason,
)
from agentkeep.models.config import (
    SETTINGS_DESCRIPTION,
    ModelSettings,
    ModuleCreate,
    PersonaCreate,
    ProviderName,
    ToolCreate,
    WorkflowCreate,
)

KINDS: tuple[str, ...] = ("personas", "modules", "tools", "agents", "workflows")
"""The kinds a project declares, in the order a sync writes them (what is referred to first)."""

DOCUMENTS: dict[str, tuple[str, ...]] = {
    "tools": ("parameters", "config"),
    "agents": ("model_settings", "metadata"),
    "workflows": ("steps", "config"),
}
"""The JSON documents of each kind (as its repository declares them), checked as the store
checks them: their form when the file is read, their size against the store's limit at sync."""

TEXTS: dict[str, tuple[str, ...]] = {
    "personas": ("description", "template", "first_message"),
    "modules": ("description", "content", "script"),
    "tools": ("description",),
    "agents": ("description",),
    "workflows": ("description",),
}
"""The long texts of each kind, limited to ``settings.max_content_bytes`` by the store."""

YAML_SUFFIXES = (".yaml", ".yml")


class AgentEntry(Input):
    """An agent as a project file declares it: ``AgentCreate`` with names for its references."""

    model_config = ConfigDict(title="Agent")

    name: Name
    description: Text | None = None
    persona: Name | None = Field(default=None, description="the name of a persona")
    tools: list[Name] = Field(
        default_factory=list, description="the names of the tools it may call"
    )
    modules: list[Name] = Field(default_factory=list, description="the names of its modules")
    provider: ProviderName | None = None
    model: Name | None = None
    model_settings: ModelSettings = Field(default_factory=dict, description=SETTINGS_DESCRIPTION)
    metadata: JSONObject = Field(default_factory=dict)
    include_history: bool = True


Entry = PersonaCreate | ModuleCreate | ToolCreate | AgentEntry | WorkflowCreate


class Project(Input):
    """A project file: what it declares, by kind. Every list may be left out."""

    model_config = ConfigDict(title="agentkeep project")

    schema_: str | None = Field(
        default=None, alias="$schema", description="the JSON Schema this file follows (editors)"
    )
    personas: list[PersonaCreate] = Field(default_factory=list)
    modules: list[ModuleCreate] = Field(default_factory=list)
    tools: list[ToolCreate] = Field(default_factory=list)
    agents: list[AgentEntry] = Field(default_factory=list)
    workflows: list[WorkflowCreate] = Field(default_factory=list)

    def entries(self, kind: str) -> Sequence[Entry]:
        """The entries of one of :data:`KINDS`."""
        entries: Sequence[Entry] = getattr(self, kind)
        return entries

    def document(self) -> dict[str, Any]:
        """The file's JSON document: defaults left out, empty kinds too."""
        dumped = self.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        return {key: value for key, value in dumped.items() if value != []}


ENTRY_TYPES: dict[str, type[Input]] = {
    "personas": PersonaCreate,
    "modules": ModuleCreate,
    "tools": ToolCreate,
    "agents": AgentEntry,
    "workflows": WorkflowCreate,
}
"""The model each kind's entries are validated by."""


def project_schema() -> dict[str, Any]:
    """The JSON Schema of a project file, for editors to complete and check it."""
    schema = Project.model_json_schema(by_alias=True)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def where(location: Sequence[int | str]) -> str:
    """``("agents", 2, "tools", 0)`` as ``agents[2].tools[0]``."""
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def invalid(source: str, path: str, message: str) -> ValidationError:
    at = f"{path}: " if path else ""
    return ValidationError(printable(f"{source}: {at}{message}"), field=path or None)


def validate_project(document: Any, source: str = "project") -> Project:
    """The project ``document`` declares, checked: types, then unique names within each kind.

    Raises:
        ValidationError: naming ``source``, the path inside the document and the field.
    """
    if not isinstance(document, dict):
        raise invalid(source, "", f"must be an object with the kinds {', '.join(KINDS)}")
    try:
        project = Project.model_validate(document)
    except ValidationError as exc:
        cause = exc.__cause__
        if isinstance(cause, PydanticValidationError):
            first = cause.errors()[0]
            raise invalid(source, where(first["loc"]), reason(first)) from None
        raise
    check_project(project, source)
    return project


def check_project(project: Project, source: str = "project") -> None:
    """What the types of an already validated project cannot say: a name given twice in one
    kind, a JSON document the store cannot keep, an agent's tool or module listed twice.

    Raises:
        ValidationError: naming ``source``, the path inside the document and the field.
    """
    for path, message in _problems(project):
        raise invalid(source, path, message)


def _problems(project: Project) -> Iterator[tuple[str, str]]:
    """What the types cannot say is wrong: names given twice, documents the store refuses."""
    for kind in KINDS:
        seen: dict[str, int] = {}
        for index, entry in enumerate(project.entries(kind)):
            if entry.name in seen:
                name = json.dumps(entry.name, ensure_ascii=False)
                yield (
                    f"{kind}[{index}].name",
                    f"{name} is also the name of {kind}[{seen[entry.name]}]",
                )
            seen[entry.name] = index
    for kind, fields in DOCUMENTS.items():
        for index, entry in enumerate(project.entries(kind)):
            for field in fields:
                problem = json_problem(getattr(entry, field))
                if problem is not None:
                    yield f"{kind}[{index}].{field}", f"is not storable: {problem}"
    for index, agent in enumerate(project.agents):
        for field in ("tools", "modules"):
            names: list[str] = getattr(agent, field)
            for position, name in enumerate(names):
                if names.index(name) != position:
                    yield f"agents[{index}].{field}[{position}]", f"{name!r} is listed twice"


def parse_project(data: bytes, source: str, *, yaml_format: bool, limit: int) -> Project:
    """Read a project file's bytes (JSON, or YAML when ``yaml_format``) and validate them.

    Raises:
        TooLargeError: ``data`` is longer than ``limit`` bytes.
        ValidationError: anything else wrong with it, naming ``source`` and where.
    """
    if len(data) > limit:
        raise TooLargeError(
            f"{source}: the file has {len(data):,} bytes; a project file may have at most {limit:,}"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise invalid(
            source, "", f"is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None
    document = _load_yaml(text, source) if yaml_format else _load_json(text, source)
    return validate_project(document, source)


def read_project(path: Path, *, limit: int) -> Project:
    """Read and validate the project file at ``path`` (YAML if it ends in .yaml or .yml)."""
    source = str(path)
    try:
        size = path.stat().st_size
        if size > limit:
            parse_project(b" " * (limit + 1), source, yaml_format=False, limit=limit)
        data = path.read_bytes()
    except OSError as exc:
        raise ValidationError(f"{source}: cannot be read: {exc.strerror}", field="file") from None
    return parse_project(
        data, source, yaml_format=path.suffix.lower() in YAML_SUFFIXES, limit=limit
    )


class KeyGivenTwiceError(ValueError):
    """A key given twice in one JSON object."""


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A ``json.loads`` object hook: :class:`KeyGivenTwiceError` for a key given twice."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            name = json.dumps(key, ensure_ascii=False)
            raise KeyGivenTwiceError(f"the key {name} is given twice")
        found[key] = value
    return found


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _load_json(text: str, source: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=unique_keys, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise invalid(
            source, "", f"is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except ValueError as exc:
        raise invalid(source, "", f"is not valid JSON: {exc}") from None
    except RecursionError:
        raise invalid(source, "", "is nested too deeply") from None


class _Loader(yaml.SafeLoader):  # type: ignore[misc]
    """PyYAML's safe loader without aliases, and refusing a key given twice in one mapping."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in a project file", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        for position, key in enumerate(keys):
            if keys.index(key) != position:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"the key {key!r} is given twice",
                    node.value[position][0].start_mark,
                )
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def _load_yaml(text: str, source: str) -> Any:
    try:
        document = yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise invalid(source, "", f"is not valid YAML: {exc.problem}{at}") from None
    except yaml.YAMLError as exc:
        raise invalid(source, "", f"is not valid YAML: {exc}") from None
    except RecursionError:
        raise invalid(source, "", "is nested too deeply") from None
    _json_only(document, source)
    return document


def _json_only(document: Any, source: str) -> None:
    """Refuse what YAML has and JSON has not (dates, non-string keys, NaN), saying where."""
    pending: list[tuple[Any, tuple[int | str, ...]]] = [(document, ())]
    while pending:
        value, location = pending.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise invalid(source, where(location), f"the key {key!r} is not a string")
                pending.append((item, (*location, key)))
        elif isinstance(value, list):
            pending.extend((item, (*location, index)) for index, item in enumerate(value))
        elif isinstance(value, float) and not math.isfinite(value):
            raise invalid(source, where(location), f"{value} is not a JSON number")
        elif not isinstance(value, str | int | float | bool) and value is not None:
            raise invalid(
                source,
                where(location),
                f"a {type(value).__name__} is not a JSON value (quote it to make it text)",
            )
