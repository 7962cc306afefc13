"""Running the tools a model calls: built-ins, and Python callables named in a tool's config.

A tool row says what the model sees (name, description, JSON Schema). What runs is either a
built-in of the same name (``current_time``) or the function named by ``config["callable"]``
(``"package.module:function"``, sync or async, called with the model's arguments as keyword
arguments). Only modules under ``AGENTKEEP_TOOL_MODULES`` prefixes are ever imported: a tool's
config arrives over the API, and an arbitrary import path would let any API client run any code.

A tool that fails, times out, is not attached to the agent or returns something unserialisable
gives the model an error result (``is_error``) instead of failing the turn: models recover from
tool errors, and the reply still gets written.
"""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import anyio
import anyio.to_thread

from agentkeep.config import Settings
from agentkeep.models.config import Tool
from agentkeep.providers.base import ToolCall


@dataclass(frozen=True, slots=True)
class ToolResult:
    content: str
    is_error: bool = False


def current_time(timezone: str = "UTC") -> dict[str, str]:
    """The current date and time in an IANA time zone (``Europe/Paris``)."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {timezone!r}") from None
    now = datetime.now(UTC).astimezone(zone)
    return {
        "timezone": timezone,
        "iso": now.isoformat(timespec="seconds"),
        "weekday": now.strftime("%A"),
    }


BUILTINS: dict[str, Callable[..., Any]] = {"current_time": current_time}


class ToolRunner:
    def __init__(self, settings: Settings) -> None:
        self._prefixes = tuple(settings.tool_modules)
        self._timeout = settings.tool_timeout
        self._resolved: dict[str, Callable[..., Any]] = {}

    async def run(self, tools: tuple[Tool, ...], call: ToolCall) -> ToolResult:
        """Run ``call`` with the agent's ``tools``; every failure becomes an error result."""
        tool = next((t for t in tools if t.name == call.name), None)
        if tool is None:
            return ToolResult(f"the agent has no tool named {call.name!r}", is_error=True)
        try:
            function = self._function(tool)
            with anyio.fail_after(self._timeout):
                if inspect.iscoroutinefunction(function):
                    value = await function(**call.arguments)
                else:
                    value = await anyio.to_thread.run_sync(lambda: function(**call.arguments))
            return ToolResult(value if isinstance(value, str) else json.dumps(value, default=str))
        except TimeoutError:
            return ToolResult(f"{call.name} took longer than {self._timeout} s", is_error=True)
        except Exception as exc:  # the model is told, the turn goes on
            return ToolResult(f"{call.name} failed: {type(exc).__name__}: {exc}", is_error=True)

    def _function(self, tool: Tool) -> Callable[..., Any]:
        path = tool.config.get("callable")
        if path is None:
            if tool.name in BUILTINS:
                return BUILTINS[tool.name]
            raise LookupError(f"no built-in tool {tool.name!r} and no `callable` in its config")
        if not isinstance(path, str) or ":" not in path:
            raise LookupError("`callable` must be 'package.module:function'")
        if path not in self._resolved:
            self._resolved[path] = self._import(path)
        return self._resolved[path]

    def _import(self, path: str) -> Callable[..., Any]:
        module_name, _, attribute = path.partition(":")
        if not any(module_name == p or module_name.startswith(p + ".") for p in self._prefixes):
            raise PermissionError(
                f"{module_name} is not under AGENTKEEP_TOOL_MODULES; tools may only call "
                "functions in modules listed there"
            )
        function = getattr(importlib.import_module(module_name), attribute)
        if not callable(function):
            raise TypeError(f"{path} is not callable")
        return function  # type: ignore[no-any-return]
