"""The ``adk`` provider: an agentkeep agent runs as a Google ADK ``LlmAgent``.

:func:`adk_agent` builds the ``LlmAgent`` from the agent's configuration: its name, its model
(``llm.py``: the offline echo model or LiteLLM), its sampling settings, its persona's system
prompt as the instruction, and its tools as ADK tools (:class:`AgentkeepTool`, run by agentkeep's
tool runner). The agent manager keeps it on the agent's cached instance: built on first use, built
again after the agent, its persona or its tools change.

:class:`AdkProvider` is agentkeep's provider protocol over it, so a chat turn (Python API, SSE,
WebSocket) runs as any other: the turn builds the prompt (persona, modules, recalled memories,
history), the provider runs ADK's ``Runner`` with the built agent for one model call, and maps
its events: partial text to ``Token``, thought text to ``Thinking``, function calls to
``ToolCallRequest``, usage to ``Usage``. The turn stores the user's message and the reply in the
conversation, and runs the tools the model asks for (storing each result) exactly as for other
providers: the provider stops ADK at the function call, before ADK would run the tool itself.
The ADK session of one call is in memory and dropped after it, seeded with the turn's prompt:
agentkeep's conversation is the record, so no message is stored twice.

A model call that fails ends the turn with an error event (the reply stored ``error``) and one
line on the ``agentkeep.adk`` logger; ADK's own records of that failure (each of its node runners
logs the traceback as the error goes up) are demoted to DEBUG while the provider runs, so an
ordinary failure does not fill the server's log (set ``google_adk`` to DEBUG to see them).

To run the agent with ADK's own ``Runner`` (sessions in agentkeep through
``AgentkeepSessionService``, tools run by ADK), use :func:`adk_runner`: its app name is the
agent's name, so its sessions are conversations of that agent in the API and the web UI.
"""

from __future__ import annotations

import importlib
import logging
import re
import uuid
from collections.abc import AsyncGenerator
from contextlib import aclosing, suppress
from contextvars import ContextVar
from typing import Any

from google.adk.agents import LlmAgent
from google.adk.agents.callback_context import CallbackContext
from google.adk.agents.readonly_context import ReadonlyContext
from google.adk.agents.run_config import (  # type: ignore[attr-defined]  # ADK's documented path
    RunConfig,
    StreamingMode,
)
from google.adk.events.event import Event
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import Runner
from google.adk.sessions import InMemorySessionService
from google.adk.tools.base_tool import BaseTool
from google.adk.tools.tool_context import ToolContext
from google.genai import types

from agentkeep.config import Settings
from agentkeep.errors import AgentkeepError
from agentkeep.managers.agents import AgentInstance, AgentManager
from agentkeep.managers.prompt import system_prompt
from agentkeep.managers.tools import ToolRunner
from agentkeep.models.common import IdLike
from agentkeep.models.config import Tool
from agentkeep.providers.base import (
    ChatMessage,
    CompletionRequest,
    ProviderError,
    ProviderEvent,
    Thinking,
    Token,
    ToolCall,
    ToolCallRequest,
    ToolSpec,
    Usage,
)
from agentkeep.repositories.base import Async
from agentkeep.repositories.facade import DatabaseManager

from .llm import RESULT_KEY, declaration, generation_config, model_for, to_contents
from .sessions import AgentkeepSessionService

RUNTIME_KEY = "adk"
"""Where an agent's instance keeps its built ADK agent."""
SYSTEM_STATE = "agentkeep_system"
"""Session state of one provider call: the turn's system prompt (the instruction)."""
TOOLS_STATE = "agentkeep_tools"
"""Session state of one provider call: the tools the turn offers (name, description, schema)."""
_APP = "agentkeep"
_USER = "agentkeep"

log = logging.getLogger("agentkeep.adk")

_ADK_LOGGERS = "google_adk"
"""The prefix of ADK's loggers' names."""
_reporting: ContextVar[bool] = ContextVar("agentkeep_adk_reporting", default=False)
"""Set while the provider runs ADK: its failures are the provider's to report."""


class _ReportedByProvider(logging.Filter):
    """Demotes ADK's error records to DEBUG while the provider runs ADK (see the module's
    documentation): dropped unless their logger is enabled for DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR or not _reporting.get():
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


_DEMOTE = _ReportedByProvider()
_seen = [0]  # how many loggers there were when they were last looked through


def _quiet_adk_failures() -> None:
    """Put the filter on ADK's loggers (a logger's filters see only its own records). A logger
    is made when its module is imported, and ADK imports the modules that run an agent when it
    first runs one: they are imported here first (and the loggers looked for again after each
    run, for what a later ADK may import then)."""
    with suppress(ImportError):  # ADK's internals: what runs a node, and logs its failures
        importlib.import_module("google.adk.workflow._node_runner_utils")
    loggers = logging.root.manager.loggerDict
    if len(loggers) == _seen[0]:  # no logger made since the last look
        return
    _seen[0] = len(loggers)
    for name, logger in list(loggers.items()):
        if (
            name.startswith(_ADK_LOGGERS)
            and isinstance(logger, logging.Logger)
            and _DEMOTE not in logger.filters
        ):
            logger.addFilter(_DEMOTE)


class AgentkeepTool(BaseTool):
    """An agentkeep tool as an ADK tool: its declaration, and run by agentkeep's tool runner."""

    def __init__(self, tool: Tool, tools: tuple[Tool, ...], runner: ToolRunner) -> None:
        super().__init__(name=tool.name, description=tool.description or "")
        self._spec = ToolSpec(tool.name, tool.description, tool.parameters or {"type": "object"})
        self._tools = tools
        self._runner = runner

    def _get_declaration(self) -> types.FunctionDeclaration:
        return declaration(self._spec)

    async def run_async(self, *, args: dict[str, Any], tool_context: ToolContext) -> Any:
        call = ToolCall(tool_context.function_call_id or "", self.name, dict(args))
        result = await self._runner.run(self._tools, call)
        return {RESULT_KEY: result.content, "is_error": result.is_error}


def adk_agent(instance: AgentInstance, settings: Settings) -> LlmAgent:
    """The ADK agent for ``instance``: built on first use, then kept with the instance."""
    return instance.runtime(RUNTIME_KEY, lambda built: build_agent(built, settings))


def build_agent(instance: AgentInstance, settings: Settings) -> LlmAgent:
    """A new ADK ``LlmAgent`` from the agent's configuration (``ProviderError`` if its model
    cannot be reached)."""
    options = dict(instance.agent.model_settings)
    default = system_prompt(instance, ())

    def instruction(context: ReadonlyContext) -> str:
        turn = context.state.get(SYSTEM_STATE)
        return turn if isinstance(turn, str) else default

    runner = ToolRunner(settings)
    return LlmAgent(
        name=agent_name(instance.agent.name),
        description=instance.agent.description or "",
        model=model_for(instance.model, options, settings),
        instruction=instruction,
        generate_content_config=generation_config(options),
        tools=[AgentkeepTool(tool, instance.tools, runner) for tool in instance.tools],
        before_model_callback=_offer_turn_tools,
    )


def agent_name(name: str) -> str:
    """An agentkeep agent's name as an ADK agent name (an identifier, never ``user``)."""
    cleaned = re.sub(r"\W", "_", name, flags=re.ASCII) or "agent"
    if not (cleaned[0].isalpha() or cleaned[0] == "_"):
        cleaned = f"agent_{cleaned}"
    return "user_agent" if cleaned == "user" else cleaned


def _offer_turn_tools(
    callback_context: CallbackContext, llm_request: LlmRequest
) -> LlmResponse | None:
    """In a chat turn, offer the model the turn's tools (the agent's, the built-in
    ``run_module``, or none on the last round) instead of the agent's own list."""
    specs = callback_context.state.get(TOOLS_STATE)
    if isinstance(specs, list):
        declared = [declaration(ToolSpec(**spec)) for spec in specs]
        llm_request.config.tools = (
            [types.Tool(function_declarations=declared)] if declared else None
        )
    return None


class AdkProvider:
    """Runs one model call of a chat turn through the agent's ADK ``LlmAgent``."""

    name = "adk"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sessions = InMemorySessionService()
        _quiet_adk_failures()

    async def stream(self, request: CompletionRequest) -> AsyncGenerator[ProviderEvent, None]:
        instance = request.agent
        if not isinstance(instance, AgentInstance):
            raise ProviderError("the adk provider runs agentkeep agents: start a chat turn")
        agent = adk_agent(instance, self.settings)  # ProviderError: its model is not reachable
        runner = instance.runtime(  # one per provider: its in-memory sessions
            f"{RUNTIME_KEY}.runner.{id(self)}",
            lambda _: Runner(app_name=_APP, agent=agent, session_service=self.sessions),
        )
        session_id, new_message = await self._seed(request, agent.name)
        reporting = _reporting.set(True)  # ADK's tasks for the run inherit it
        try:
            run = runner.run_async(
                user_id=_USER,
                session_id=session_id,
                new_message=new_message,
                run_config=RunConfig(streaming_mode=StreamingMode.SSE),
            )
            async with aclosing(run) as events:
                streamed = False
                async for event in events:
                    calls = False
                    for shown in _mapped(event, streamed):
                        calls = calls or isinstance(shown, ToolCallRequest)
                        yield shown
                    streamed = bool(event.partial)
                    if calls:  # agentkeep runs and stores the tools: stop ADK before it does
                        return
        except AgentkeepError as exc:
            _log_failure(instance, exc.message, exc)
            raise
        except Exception as exc:
            failure = ProviderError(f"the ADK agent failed: {type(exc).__name__}: {exc}")
            _log_failure(instance, failure.message, exc)
            raise failure from exc
        finally:
            with suppress(ValueError):  # closed from another context than it ran in
                _reporting.reset(reporting)
            _quiet_adk_failures()
            await self.sessions.delete_session(app_name=_APP, user_id=_USER, session_id=session_id)

    async def _seed(self, request: CompletionRequest, author: str) -> tuple[str, types.Content]:
        """A session holding the turn's prompt up to its last message, and that message."""
        messages = list(request.messages)
        system = [m.content for m in messages if m.role == "system"]
        rest = [m for m in messages if m.role != "system"]
        tail = _tail(rest)
        history, last = rest[: len(rest) - tail], rest[len(rest) - tail :]
        if not last:
            last = [ChatMessage("user", "")]
        tools = [
            {"name": s.name, "description": s.description, "parameters": s.parameters}
            for s in request.tools
        ]
        state = {SYSTEM_STATE: "\n\n".join(system), TOOLS_STATE: tools}
        session = await self.sessions.create_session(
            app_name=_APP, user_id=_USER, state=state, session_id=uuid.uuid4().hex
        )
        for content in to_contents(history):
            who = "user" if content.role == "user" else author
            await self.sessions.append_event(session, Event(author=who, content=content))
        new_message = to_contents(last)[0]
        return session.id, new_message


def _log_failure(instance: AgentInstance, message: str, exc: BaseException) -> None:
    """One line for a failed model call; its traceback at DEBUG."""
    log.warning("the adk agent %r failed: %s", instance.agent.name, message)
    log.debug("the adk agent %r failed", instance.agent.name, exc_info=exc)


def _tail(messages: list[ChatMessage]) -> int:
    """How many messages at the end are the new input: the last user message, or the tool
    results that follow the model's last calls."""
    count = 0
    for message in reversed(messages):
        if message.role != "tool":
            break
        count += 1
    return count or (1 if messages and messages[-1].role == "user" else 0)


def _mapped(event: Event, streamed: bool) -> list[ProviderEvent]:
    """The provider events of one ADK event. A final event repeats the text its partial events
    streamed: only a final event with no partial ones before it shows its text."""
    if event.author == "user" or event.content is None:
        return []
    shown: list[ProviderEvent] = []
    parts = event.content.parts or []
    if event.partial or not streamed:
        for part in parts:
            if part.text:
                shown.append(Thinking(part.text) if part.thought else Token(part.text))
    for part in parts:
        call = part.function_call
        if call is not None and not event.partial:
            shown.append(
                ToolCallRequest(ToolCall(call.id or "", call.name or "", dict(call.args or {})))
            )
    usage = event.usage_metadata
    if usage is not None and not event.partial:
        shown.append(Usage(usage.prompt_token_count or 0, usage.candidates_token_count or 0))
    return shown


async def adk_runner(db: DatabaseManager[Async], agents: AgentManager, agent_id: IdLike) -> Runner:
    """ADK's ``Runner`` for an agentkeep agent, its sessions kept in ``db`` as conversations of
    that agent (app name: the agent's name) and its tools run by ADK through agentkeep's tool
    runner."""
    instance = await agents.ensure_agent_instance(agent_id)
    return Runner(
        app_name=instance.agent.name,
        agent=adk_agent(instance, db.settings),
        session_service=AgentkeepSessionService(db),
    )
