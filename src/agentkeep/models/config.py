"""Configuration: personas, modules, agents, tools and workflows.

Each is identified by a unique ``name`` as well as its id, so a project file can declare
them by name and be synced into the store with ``upsert_by_name``. ``*Create`` is a complete
declaration; ``*Update`` changes only the fields it sets (``None`` clears a nullable field).
Usage statistics (counts, last use) are kept by the store and are read-only here.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import regex
from pydantic import AfterValidator, Field

from agentkeep.models.common import Input, Int32, JSONObject, Model, Name, Name50, Text, Text500
from agentkeep.models.enums import ExecutionContext


def _compiles(value: str) -> str:
    try:
        regex.compile(value)  # the engine that runs triggers
    except regex.error as exc:
        raise ValueError(f"is not a valid regular expression: {exc}") from None
    return value


Label = Name50
"""A short tag-like value: a persona mode, a module type, a provider name."""

Pattern = Annotated[Text500, AfterValidator(_compiles)]
"""A module's trigger: a regular expression in Python's ``re`` syntax, run by the ``regex``
engine with a time limit per message (see ``agentkeep.managers.prompt``)."""


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
    script: str | None = None
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
    script: Text | None = None
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
    script: Text | None = None
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
    model_settings: JSONObject = Field(default_factory=dict)
    metadata: JSONObject = Field(default_factory=dict)
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
    provider: Label | None = None
    model: Name | None = None
    model_settings: JSONObject = Field(
        default_factory=dict, description="provider parameters: temperature, max_tokens, …"
    )
    metadata: JSONObject = Field(default_factory=dict)
    include_history: bool = True


class AgentUpdate(Input):
    name: Name | None = None
    description: Text | None = None
    persona_id: uuid.UUID | None = None
    provider: Label | None = None
    model: Name | None = None
    model_settings: JSONObject | None = None
    metadata: JSONObject | None = None
    include_history: bool | None = None


# -- tools ---------------------------------------------------------------------------------------


class Tool(Model):
    id: uuid.UUID
    name: str
    description: str | None = None
    parameters: JSONObject = Field(default_factory=dict)
    config: JSONObject = Field(default_factory=dict)
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
    steps: list[Any] = Field(default_factory=list)
    config: JSONObject = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime


class WorkflowCreate(Input):
    name: Name
    description: Text | None = None
    steps: list[Any] = Field(
        default_factory=list, description="the steps in order (agent names or step objects)"
    )
    config: JSONObject = Field(default_factory=dict)


class WorkflowUpdate(Input):
    name: Name | None = None
    description: Text | None = None
    steps: list[Any] | None = None
    config: JSONObject | None = None
