"""Configuration: personas, modules, agents, tools and workflows.

Each is identified by a unique ``name`` as well as its id, so a project file can declare
them by name and be synced into the store with ``upsert_by_name``. ``*Create`` is a complete
declaration; ``*Update`` changes only the fields it sets (``None`` clears a nullable field).
Usage statistics (counts, last use) are kept by the store and are read-only here.
"""

from __future__ import annotations

import re
import re._constants as re_constants  # type: ignore[import-not-found]  # no stubs
import re._parser as re_parser  # type: ignore[import-not-found]  # the stdlib's own parser
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, Literal

import regex
from pydantic import AfterValidator, Field
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_core import ValidationError as PydanticValidationError

from agentkeep.errors import ValidationError
from agentkeep.models.common import (
    INT32_MAX,
    Input,
    Int32,
    JSONObject,
    Model,
    Name,
    Name50,
    StoredJSONList,
    StoredJSONObject,
    Text,
    Text500,
)
from agentkeep.models.enums import ExecutionContext

TRIGGER_EXPANSION = 10_000
"""How far a trigger's counted repeats may multiply out (``(a{100}){100}`` is 10,000): the
``regex`` engine unrolls them when it compiles, so ``((a{1000}){1000}){1000}`` would take
minutes and gigabytes before it ever searched."""


def compile_trigger(pattern: str) -> regex.Pattern[str]:
    """``pattern`` compiled for searching triggers; ``ValueError`` saying why it cannot be.

    Parsed first by the standard library's parser (instant, never unrolls) so that a pattern
    whose counted repeats multiply out beyond :data:`TRIGGER_EXPANSION` is refused before the
    engine sees it.
    """
    try:
        size = _expansion(re_parser.parse(pattern))
        if size > TRIGGER_EXPANSION:
            raise ValueError(
                f"repeats too much: its counted repeats multiply out to {size} "
                f"(at most {TRIGGER_EXPANSION})"
            )
        return regex.compile(pattern)
    except RecursionError:
        raise ValueError("nests too deeply") from None
    except (re.error, regex.error, OverflowError) as exc:
        raise ValueError(f"is not a valid regular expression: {exc}") from None


def _expansion(items: Iterable[tuple[Any, Any]]) -> int:
    """The size of a parsed pattern once its counted repeats are unrolled."""
    size = 0
    for op, av in items:
        if op in _REPEATS:
            low, high, item = av
            size += max(low if high == re_constants.MAXREPEAT else high, 1) * _expansion(item)
        elif op is re_constants.SUBPATTERN:
            size += _expansion(av[-1])
        elif op is re_constants.BRANCH:
            size += sum(_expansion(branch) for branch in av[1])
        elif op in (re_constants.ASSERT, re_constants.ASSERT_NOT):
            size += _expansion(av[1])
        elif op is re_constants.ATOMIC_GROUP:
            size += _expansion(av)
        elif op is re_constants.GROUPREF_EXISTS:
            size += sum(_expansion(branch) for branch in av[1:] if branch is not None)
        else:
            size += 1
    return size


_REPEATS = (re_constants.MAX_REPEAT, re_constants.MIN_REPEAT, re_constants.POSSESSIVE_REPEAT)


def _compiles(value: str) -> str:
    compile_trigger(value)
    return value


Label = Name50
"""A short tag-like value: a persona mode, a module type, a provider name."""

Pattern = Annotated[Text500, AfterValidator(_compiles)]
"""A module's trigger: a regular expression in Python's ``re`` syntax, run by the ``regex``
engine with a time limit per message (see ``agentkeep.managers.prompt``). Refused (naming
``trigger_pattern``): one that does not compile, nests too deeply, or whose counted repeats
multiply out beyond :data:`TRIGGER_EXPANSION`."""

PROVIDER_NAMES: tuple[str, ...] = ("echo", "openai", "adk")
"""The model providers an agent may name (``agentkeep.providers`` builds each)."""


def _known_provider(name: str) -> str:
    if name not in PROVIDER_NAMES:
        raise ValueError(f"unknown provider {name!r}; choose one of: {', '.join(PROVIDER_NAMES)}")
    return name


ProviderName = Annotated[Label, AfterValidator(_known_provider)]
"""A provider an agent may name: an unknown one is refused when the agent is saved, not when it
first chats."""

EmbedderName = Literal["hash", "minilm", "openai"]
"""What computes memories' embeddings."""


SCRIPTS_REFUSED = (
    "modules do not run scripts: code the server runs is a tool, a Python function in a module "
    "listed in AGENTKEEP_TOOL_MODULES (see the README, Tools); give the module instructions in "
    "`content` and the agent the tool"
)
"""Why a module's ``script`` is refused when it is saved."""


def _no_script(value: str | None) -> None:
    if value is not None:
        raise ValueError(SCRIPTS_REFUSED)


NoScript = Annotated[Text | None, AfterValidator(_no_script)]
"""A module's ``script``, which may no longer be set: a script arrives over the API as text, and
running it would let any API client run any code on the server. Code the server runs is
allow-listed instead (``AGENTKEEP_TOOL_MODULES``, as for tools). A script stored by an earlier
release reads back unchanged and is never run; ``null`` is accepted (it clears one)."""


def _refused(loc: tuple[int | str, ...], value: object, problem: str) -> PydanticValidationError:
    """A pydantic error located at ``key`` inside the value being validated (so the field it
    names is ``model_settings.history_messages``, ``steps.1.agent``)."""
    error = PydanticCustomError("invalid_setting", "{problem}", {"problem": problem})
    return PydanticValidationError.from_exception_data(
        "settings", [InitErrorDetails(type=error, loc=loc, input=value)]
    )


HISTORY_SCOPES = ("conversation", "user")
"""What ``model_settings.history_scope`` may say (``managers.prompt``, History)."""


def model_settings_problem(settings: dict[str, Any]) -> tuple[str, str] | None:
    """(key, why) for the first of an agent's ``model_settings`` that is refused, else ``None``.

    Keys are never stored on an agent (``api_key``; ``api_key_env`` names the environment
    variable holding one, and must end in ``_API_KEY``), and the history options must be what
    the turn reads: ``history_messages`` and ``history_tokens`` whole numbers, 0 or more (or
    null for the default), ``history_scope`` one of :data:`HISTORY_SCOPES` (or null).
    """
    if "api_key" in settings:
        return "api_key", (
            "is refused: keys are never stored on an agent; keep the key in an environment "
            "variable and name it in api_key_env"
        )
    env = settings.get("api_key_env")
    if env is not None and not (isinstance(env, str) and env.endswith("_API_KEY")):
        return "api_key_env", "must name an environment variable ending in _API_KEY"
    for key in ("history_messages", "history_tokens"):
        count = settings.get(key)
        if count is not None and not _count(count):
            return key, f"must be a whole number from 0 to {INT32_MAX}"
    scope = settings.get("history_scope")
    if scope is not None and scope not in HISTORY_SCOPES:
        return "history_scope", f"must be one of: {', '.join(HISTORY_SCOPES)}"
    return None


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= INT32_MAX


def check_model_settings(settings: dict[str, Any]) -> None:
    """Raise :class:`agentkeep.ValidationError` naming ``model_settings.<key>`` for settings
    :func:`model_settings_problem` refuses (an agent stored before they were checked)."""
    problem = model_settings_problem(settings)
    if problem is not None:
        key, why = problem
        raise ValidationError(f"model_settings.{key}: {why}", field=f"model_settings.{key}")


def _valid_settings(settings: dict[str, Any]) -> dict[str, Any]:
    problem = model_settings_problem(settings)
    if problem is not None:
        key, why = problem
        raise _refused((key,), settings.get(key), why)
    return settings


SETTINGS_DESCRIPTION = (
    "provider parameters: temperature, max_tokens, …; history_messages, history_tokens, "
    "history_scope; never a key (api_key is refused; api_key_env names a variable ending in "
    "_API_KEY)"
)

ModelSettings = Annotated[JSONObject, AfterValidator(_valid_settings)]
"""An agent's ``model_settings`` as saved: see :func:`model_settings_problem`."""


STEP_KEYS = ("agent", "tool")
"""The keys of a workflow step object that name an agent or a tool (at least one is given)."""


def _valid_steps(steps: list[Any]) -> list[Any]:
    for index, step in enumerate(steps):
        if isinstance(step, str):
            if not step.strip():
                raise _refused((index,), step, "must be an agent's name (a step given as text)")
            continue
        if not isinstance(step, dict):
            raise _refused(
                (index,),
                step,
                "a step is an agent's name or an object naming its agent under `agent` "
                "and/or a tool under `tool`",
            )
        if not any(key in step for key in STEP_KEYS):
            raise _refused((index,), step, "a step object names an `agent` or a `tool`")
        for key, noun in (("agent", "an agent"), ("tool", "a tool")):
            if key in step and not (isinstance(step[key], str) and step[key].strip()):
                raise _refused((index, key), step[key], f"must be the name of {noun}")
    return steps


STEPS_DESCRIPTION = (
    "the steps in order: an agent's name, or a step object naming its agent under `agent` "
    "and/or a tool under `tool`"
)

Steps = Annotated[list[Any], AfterValidator(_valid_steps)]
"""A workflow's steps in order: an agent's name, or an object naming its agent under ``agent``
and/or a tool under ``tool`` (any other key of a step object is the workflow's own)."""


# -- personas ------------------------------------------------------------------------------------


class Persona(Model):
    id: uuid.UUID
    name: str
    description: str | None = None
    template: str
    mode: str | None = None
    loop_frequency: str | None = None
    first_message: str | None = None
    image_path: str | None = None
    is_active: bool = True
    created_at: datetime
    updated_at: datetime


class PersonaCreate(Input):
    name: Name
    description: Text | None = None
    template: Text
    mode: Label | None = None
    loop_frequency: Label | None = None
    first_message: Text | None = None
    image_path: Text500 | None = None
    is_active: bool = True


class PersonaUpdate(Input):
    name: Name | None = None
    description: Text | None = None
    template: Text | None = None
    mode: Label | None = None
    loop_frequency: Label | None = None
    first_message: Text | None = None
    image_path: Text500 | None = None
    is_active: bool | None = None


# -- modules -------------------------------------------------------------------------------------


class Module(Model):
    id: uuid.UUID
    name: str
    description: str | None = None
    content: str | None = None
    type: str
    trigger_pattern: str | None = None
    script: str | None = Field(
        None, description="stored by an earlier release; never run (modules take no scripts)"
    )
    execution_context: ExecutionContext = ExecutionContext.ON_DEMAND
    requires_ai_inference: bool = False
    stage_priority: int = 100
    is_active: bool = True
    created_at: datetime
    updated_at: datetime


class ModuleCreate(Input):
    name: Name
    type: Label
    description: Text | None = None
    content: Text | None = None
    trigger_pattern: Pattern | None = None
    script: NoScript = Field(None, description="refused unless null: " + SCRIPTS_REFUSED)
    execution_context: ExecutionContext = ExecutionContext.ON_DEMAND
    requires_ai_inference: bool = False
    stage_priority: Int32 = 100
    is_active: bool = True


class ModuleUpdate(Input):
    name: Name | None = None
    type: Label | None = None
    description: Text | None = None
    content: Text | None = None
    trigger_pattern: Pattern | None = None
    script: NoScript = Field(None, description="refused unless null: " + SCRIPTS_REFUSED)
    execution_context: ExecutionContext | None = None
    requires_ai_inference: bool | None = None
    stage_priority: Int32 | None = None
    is_active: bool | None = None


# -- agents ----------------------------------------------------------------------------------------


class Agent(Model):
    id: uuid.UUID
    name: str
    description: str | None = None
    persona_id: uuid.UUID | None = None
    provider: str | None = None
    model: str | None = None
    model_settings: StoredJSONObject = Field(default_factory=dict)
    metadata: StoredJSONObject = Field(default_factory=dict)
    include_history: bool = True
    conversation_count: int = 0
    message_count: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    last_used_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class AgentCreate(Input):
    name: Name
    description: Text | None = None
    persona_id: uuid.UUID | None = None
    provider: ProviderName | None = None
    model: Name | None = None
    model_settings: ModelSettings = Field(default_factory=dict, description=SETTINGS_DESCRIPTION)
    metadata: JSONObject = Field(default_factory=dict)
    include_history: bool = True


class AgentUpdate(Input):
    name: Name | None = None
    description: Text | None = None
    persona_id: uuid.UUID | None = None
    provider: ProviderName | None = None
    model: Name | None = None
    model_settings: ModelSettings | None = Field(None, description=SETTINGS_DESCRIPTION)
    metadata: JSONObject | None = None
    include_history: bool | None = None


# -- tools ---------------------------------------------------------------------------------------


class Tool(Model):
    id: uuid.UUID
    name: str
    description: str | None = None
    parameters: StoredJSONObject = Field(default_factory=dict)
    config: StoredJSONObject = Field(default_factory=dict)
    usage_count: int = 0
    last_used_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class ToolCreate(Input):
    name: Name
    description: Text | None = None
    parameters: JSONObject = Field(
        default_factory=dict, description="a JSON Schema object for the tool's arguments"
    )
    config: JSONObject = Field(default_factory=dict)


class ToolUpdate(Input):
    name: Name | None = None
    description: Text | None = None
    parameters: JSONObject | None = None
    config: JSONObject | None = None


# -- workflows -----------------------------------------------------------------------------------


class Workflow(Model):
    id: uuid.UUID
    name: str
    description: str | None = None
    steps: StoredJSONList = Field(default_factory=list)
    config: StoredJSONObject = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime


class WorkflowCreate(Input):
    name: Name
    description: Text | None = None
    steps: Steps = Field(default_factory=list, description=STEPS_DESCRIPTION)
    config: JSONObject = Field(default_factory=dict)


class WorkflowUpdate(Input):
    name: Name | None = None
    description: Text | None = None
    steps: Steps | None = Field(None, description=STEPS_DESCRIPTION)
    config: JSONObject | None = None
