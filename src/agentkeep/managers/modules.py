"""ON_DEMAND modules: run when asked, by a client or by the model in a turn.

A module saved without ``execution_context`` is ``ON_DEMAND``: no trigger runs it. It runs when

- a client asks, ``POST /api/v1/conversations/{id}/modules/{module}/run`` (:func:`run_module`),
  with the conversation so far as its input;
- the model asks, in a turn: an agent is offered the built-in tool :data:`RUN_MODULE` while any
  active ``ON_DEMAND`` module exists (its description lists them, its ``name`` argument names one),
  with the turn's prompt so far as its input; the result is the tool's result, which the model
  answers with.

Running one does what a POST_RESPONSE module does after a reply, on demand:

- a module that ``requires_ai_inference`` gets one call to the conversation's agent's model (the
  module's ``content`` as instructions, the conversation as a ``User:`` / ``Assistant:``
  transcript as input); the answer is the result, and is kept in the conversation's state under
  ``output``, scoped to the module (``GET …/state?module_id=…``), replacing the previous one;
- any other module's result is its ``content`` (its instructions: the model that asked follows
  them for the rest of its reply), and the run is recorded in the state under ``triggered`` (the
  id of the conversation's latest message, or ``null``).

Only an active ``ON_DEMAND`` module runs when asked; IMMEDIATE and POST_RESPONSE modules run at
their stage of a turn. Modules never run code: see :data:`agentkeep.models.config.NoScript`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from agentkeep.config import Settings
from agentkeep.errors import AgentkeepError, ConflictError, NotFoundError
from agentkeep.managers.agents import AgentInstance
from agentkeep.models.common import Model
from agentkeep.models.config import Module
from agentkeep.models.enums import ExecutionContext
from agentkeep.providers import get_provider
from agentkeep.providers.base import ChatMessage, CompletionRequest, Token, ToolSpec
from agentkeep.repositories.base import Async
from agentkeep.repositories.facade import DatabaseManager

RUN_MODULE = "run_module"
"""The built-in tool that runs an ON_DEMAND module in a turn."""

OUTPUT_KEY = "output"
"""The state key (scoped to the module) that keeps a model-run module's answer."""

TRIGGERED_KEY = "triggered"
"""The state key (scoped to the module) that records a run of a module without a model call."""

_SPEAKERS = {"user": "User", "assistant": "Assistant"}


class ModuleRun(Model):
    """What running an ON_DEMAND module produced."""

    module_id: uuid.UUID
    module: str
    """The module's name."""
    conversation_id: uuid.UUID
    result: str
    """The model's answer (a module that requires AI inference), else the module's content."""
    state_key: str
    """Where the run is kept in the conversation's state, scoped to the module: ``output`` (the
    answer) or ``triggered`` (the latest message's id)."""


def check_runnable(module: Module) -> Module:
    """``module`` if it may run when asked; ``ConflictError`` (field ``module``) saying why not."""
    if module.execution_context is not ExecutionContext.ON_DEMAND:
        raise ConflictError(
            f"module {module.name!r} runs {module.execution_context.value} (at its stage of a "
            "turn); only ON_DEMAND modules run when asked",
            field="module",
        )
    if not module.is_active:
        raise ConflictError(f"module {module.name!r} is not active", field="module")
    return module


async def find_module(db: DatabaseManager[Async], ref: str) -> Module:
    """The module with this id or name; ``NotFoundError`` (field ``module``) if there is none."""
    try:
        module_id = uuid.UUID(ref)
    except ValueError:
        found = await db.modules.find_by_name(ref)
    else:
        found = await db.modules.find(module_id)
    if found is None:
        raise NotFoundError(f"no module with the id or name {ref!r}", field="module")
    return found


def transcript(messages: Iterable[ChatMessage]) -> str:
    """The conversation's spoken part as ``User: …`` / ``Assistant: …`` lines (no system, tools)."""
    lines = [
        f"{_SPEAKERS[m.role]}: {m.content}" for m in messages if m.role in _SPEAKERS and m.content
    ]
    return "\n".join(lines)


async def answer(instance: AgentInstance, settings: Settings, module: Module, text: str) -> str:
    """The agent's model's answer to the module's instructions about ``text``; the provider's
    failure is raised."""
    provider = get_provider(instance.provider, settings)
    request = CompletionRequest(
        instance.model,
        (ChatMessage("system", module.content or ""), ChatMessage("user", text)),
        settings=dict(instance.agent.model_settings),
    )
    return "".join([e.text async for e in provider.stream(request) if isinstance(e, Token)])


async def run_module(
    db: DatabaseManager[Async],
    settings: Settings,
    module: Module,
    *,
    conversation_id: uuid.UUID,
    instance: AgentInstance | None,
    conversation: str,
    latest: uuid.UUID | None,
) -> ModuleRun:
    """Run an ON_DEMAND ``module`` for a conversation and keep its result in the state.

    Args:
        db: the store.
        settings: the server's settings (the provider's).
        module: an active ON_DEMAND module (see :func:`check_runnable`).
        conversation_id: the conversation it runs for.
        instance: the agent whose model answers; needed only when the module requires AI
            inference.
        conversation: the module's input, a transcript (see :func:`transcript`).
        latest: the conversation's latest message, recorded for a module run without a model.
    """
    key, kept, result = TRIGGERED_KEY, str(latest) if latest else None, module.content or ""
    if module.requires_ai_inference:
        assert instance is not None
        result = await answer(instance, settings, module, conversation)
        key, kept = OUTPUT_KEY, result
    await db.states.put(conversation_id, key, kept, module_id=module.id)
    return ModuleRun(
        module_id=module.id,
        module=module.name,
        conversation_id=conversation_id,
        result=result,
        state_key=key,
    )


def run_module_spec(modules: Sequence[Module]) -> ToolSpec:
    """The :data:`RUN_MODULE` tool as the model sees it, naming the ``modules`` it may run."""
    listed = "; ".join(f"{m.name}: {m.description or 'no description'}" for m in modules)
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "name": {
                "type": "string",
                "enum": [m.name for m in modules],
                "description": "the module to run",
            }
        },
        "required": ["name"],
        "additionalProperties": False,
    }
    return ToolSpec(
        RUN_MODULE,
        "Run one of the modules available on demand and get its result (instructions to "
        f"follow, or an answer about the conversation). Modules: {listed}",
        parameters,
    )


async def run_for_model(
    db: DatabaseManager[Async],
    settings: Settings,
    instance: AgentInstance,
    modules: Sequence[Module],
    arguments: dict[str, Any],
    *,
    conversation_id: uuid.UUID,
    prompt: Sequence[ChatMessage],
    latest: uuid.UUID | None,
) -> tuple[str, bool]:
    """Run the module the model named in a :data:`RUN_MODULE` call: (result, is_error)."""
    name = arguments.get("name")
    module = next((m for m in modules if m.name == name), None)
    if module is None:
        offered = ", ".join(repr(m.name) for m in modules)
        return f"no module named {name!r} runs on demand; choose one of: {offered}", True
    try:
        run = await run_module(
            db,
            settings,
            module,
            conversation_id=conversation_id,
            instance=instance,
            conversation=transcript(prompt),
            latest=latest,
        )
    except AgentkeepError as exc:  # the model is told, the turn goes on
        return f"{RUN_MODULE} failed: {exc.message}", True
    return run.result, False
