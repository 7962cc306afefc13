"""ON_DEMAND modules: which may run when asked, the ``run_module`` tool the model sees, and the
transcript a module gets as its input; and module scripts refused when saved."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from agentkeep import Module
from agentkeep.errors import ConflictError
from agentkeep.errors import ValidationError as AgentkeepValidationError
from agentkeep.managers.modules import RUN_MODULE, check_runnable, run_module_spec, transcript
from agentkeep.models.config import SCRIPTS_REFUSED, ModuleCreate, ModuleUpdate
from agentkeep.models.enums import ExecutionContext
from agentkeep.providers.base import ChatMessage, ToolCall

NOW = datetime.now(UTC)


def module(name: str, **fields: Any) -> Module:
    return Module(id=uuid.uuid4(), name=name, type="t", created_at=NOW, updated_at=NOW, **fields)


class TestRunnable:
    def test_an_active_on_demand_module_may_run(self) -> None:
        found = module("m")
        assert found.execution_context is ExecutionContext.ON_DEMAND  # the default
        assert check_runnable(found) is found

    @pytest.mark.parametrize(
        "context", [ExecutionContext.IMMEDIATE, ExecutionContext.POST_RESPONSE]
    )
    def test_a_module_of_another_stage_may_not(self, context: ExecutionContext) -> None:
        with pytest.raises(ConflictError) as refused:
            check_runnable(module("m", execution_context=context))
        assert refused.value.field == "module"
        assert context.value in refused.value.message

    def test_an_inactive_module_may_not(self) -> None:
        with pytest.raises(ConflictError, match="not active"):
            check_runnable(module("m", is_active=False))


class TestTool:
    def test_the_tool_names_each_module_and_takes_one_of_their_names(self) -> None:
        spec = run_module_spec([module("polite", description="formal"), module("summary")])
        assert spec.name == RUN_MODULE
        assert "polite: formal" in (spec.description or "")
        assert "summary: no description" in (spec.description or "")
        assert spec.parameters["properties"]["name"]["enum"] == ["polite", "summary"]
        assert spec.parameters["required"] == ["name"]


class TestTranscript:
    def test_only_what_was_said_by_the_user_and_the_assistant(self) -> None:
        call = ToolCall("c1", "current_time", {})
        prompt = [
            ChatMessage("system", "You are x."),
            ChatMessage("user", "what time is it?"),
            ChatMessage("assistant", "", tool_calls=(call,)),
            ChatMessage("tool", "12:00", tool_call_id="c1"),
            ChatMessage("assistant", "noon"),
        ]
        assert transcript(prompt) == "User: what time is it?\nAssistant: noon"


class TestScripts:
    @pytest.mark.parametrize("model", [ModuleCreate, ModuleUpdate])
    def test_a_script_is_refused_naming_it(self, model: type[ModuleCreate | ModuleUpdate]) -> None:
        fields = {"name": "m", "type": "t", "script": "print(1)"}
        with pytest.raises(AgentkeepValidationError) as refused:
            model(**fields)
        assert refused.value.field == "script"
        assert SCRIPTS_REFUSED in refused.value.message

    def test_no_script_is_fine(self) -> None:
        assert ModuleCreate(name="m", type="t", script=None).script is None
