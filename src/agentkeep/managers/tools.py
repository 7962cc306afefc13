"""Running the tools a model calls: built-ins, and Python callables named in a tool's config.

(The built-in ``run_module``, which runs an ON_DEMAND module, is run by the tool loop: see
``managers.modules``. Modules themselves never run code: the callables here are the only code a
client can have the server run, and only from modules allowed below.)

A tool row says what the model sees (name, description, JSON Schema). What runs is either a
built-in of the same name (``current_time``) or the function named by ``config["callable"]``
(``"package.module:function"``, sync or async, called with the model's arguments as keyword
arguments). Only modules under ``AGENTKEEP_TOOL_MODULES`` prefixes are ever imported (``pkg``
allows ``pkg`` and ``pkg.sub``, not ``pkg_evil``): a tool's config arrives over the API, and an
arbitrary import path would let any API client run any code. Any callable the allowed module
holds may be named, including one it imported from elsewhere.

A tool that fails, times out, is not attached to the agent, returns something unserialisable
or more than ``AGENTKEEP_MAX_CONTENT_BYTES`` gives the model an error result (``is_error``)
instead of failing the turn: models recover from tool errors, and the reply still gets written.
A value JSON cannot hold is sent as its ``str()``; a NUL character (which PostgreSQL cannot
store) as U+FFFD.

The time limit (``AGENTKEEP_TOOL_TIMEOUT``) ends the wait at the limit, whatever the tool does:

- an async tool is cancelled there (unless it blocks the event loop, which nothing can stop);
- a sync tool runs in a worker thread, and Python cannot stop a thread: past its limit it keeps
  running until it returns, and what it returns (or raises) is discarded. Sync tools have their
  own thread budget, apart from the one the store's calls use, so slow tools never hold up the
  database: at most :data:`SYNC_TOOLS_AWAITED` are waited for at once (a call waits for its turn
  within its time limit), and at most :data:`SYNC_TOOLS_RUNNING` run in all, those past their
  limit included; while that many are running, a sync tool call gets an error result at once
  instead of another thread. A sync tool still running when the process exits delays the exit
  until it returns, so a sync tool that may hang should have its own timeout (on its sockets, its
  subprocesses) shorter than the limit.
"""

from __future__ import annotations

import importlib
import inspect
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import anyio
import anyio.to_thread

from agentkeep.config import Settings
from agentkeep.models.config import Tool
from agentkeep.providers.base import ToolCall

SYNC_TOOLS_AWAITED = 8
"""Sync tool calls waited for at once, per process; others wait for a turn (within their limit)."""

SYNC_TOOLS_RUNNING = 16
"""Sync tool calls running at once, per process, counting those past their time limit."""


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


class _Raised(Exception):  # noqa: N818 (a carrier, not an error of its own)
    """What a sync tool raised that is not an ``Exception`` (``SystemExit``, ...): re-raised in
    the event loop as it is, it would stop the server."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class _SyncTools:
    """Runs sync tools in worker threads on a budget of their own (see the module docstring)."""

    def __init__(self) -> None:
        self._awaited = anyio.CapacityLimiter(SYNC_TOOLS_AWAITED)
        self._lock = threading.Lock()
        self._running = 0

    @property
    def running(self) -> int:
        """Sync tool calls running now, those past their time limit included."""
        return self._running

    async def call(self, function: Callable[..., Any], arguments: Mapping[str, Any]) -> Any:
        """``function(**arguments)`` in a worker thread; cancelling the wait abandons the thread
        (it runs on, its outcome discarded) instead of waiting for it."""
        value, error = await anyio.to_thread.run_sync(
            self._work, function, arguments, abandon_on_cancel=True, limiter=self._awaited
        )
        if error is None:
            return value
        raise error if isinstance(error, Exception) else _Raised(error)

    def _work(
        self, function: Callable[..., Any], arguments: Mapping[str, Any]
    ) -> tuple[Any, BaseException | None]:
        with self._lock:
            if self._running >= SYNC_TOOLS_RUNNING:
                busy = RuntimeError(
                    f"{SYNC_TOOLS_RUNNING} sync tools are still running (some past their time "
                    "limit); try again later"
                )
                return None, busy
            self._running += 1
        try:
            return function(**arguments), None
        except BaseException as exc:  # the tool's own, even SystemExit: this thread is the tool's
            return None, exc
        finally:
            with self._lock:
                self._running -= 1


class ToolRunner:
    def __init__(self, settings: Settings) -> None:
        self._prefixes = tuple(settings.tool_modules)
        self._timeout = settings.tool_timeout
        self._max_bytes = settings.max_content_bytes
        self._resolved: dict[str, Callable[..., Any]] = {}
        self.sync_tools = _SyncTools()

    async def run(self, tools: tuple[Tool, ...], call: ToolCall) -> ToolResult:
        """Run ``call`` with the agent's ``tools``; every failure becomes an error result, and
        every result is one the store accepts as a ``tool`` message."""
        return self.storable(call.name, await self._run(tools, call))

    def storable(self, name: str, result: ToolResult) -> ToolResult:
        """``result`` as one the store accepts as a ``tool`` message (an error result if it is
        too large); ``name`` is the tool's, for the error."""
        content = result.content.replace("\x00", "\ufffd")  # PostgreSQL refuses NUL in text
        if len(content) * 4 > self._max_bytes and len(content.encode()) > self._max_bytes:
            return ToolResult(
                f"{name} returned {len(content.encode())} bytes; a result may have at most "
                f"{self._max_bytes} (AGENTKEEP_MAX_CONTENT_BYTES)",
                is_error=True,
            )
        return result if content == result.content else ToolResult(content, result.is_error)

    async def _run(self, tools: tuple[Tool, ...], call: ToolCall) -> ToolResult:
        tool = next((t for t in tools if t.name == call.name), None)
        if tool is None:
            return ToolResult(f"the agent has no tool named {call.name!r}", is_error=True)
        try:
            function = self._function(tool)
            with anyio.fail_after(self._timeout):
                value = await self._call(function, call.arguments)
            return ToolResult(value if isinstance(value, str) else json.dumps(value, default=str))
        except TimeoutError:
            return ToolResult(f"{call.name} took longer than {self._timeout} s", is_error=True)
        except Exception as exc:  # the model is told, the turn goes on
            error = exc.error if isinstance(exc, _Raised) else exc
            return ToolResult(f"{call.name} failed: {type(error).__name__}: {error}", is_error=True)

    async def _call(self, function: Callable[..., Any], arguments: Mapping[str, Any]) -> Any:
        if inspect.iscoroutinefunction(function):
            return await function(**arguments)
        value = await self.sync_tools.call(function, arguments)
        if inspect.isawaitable(value):  # a sync callable that hands back a coroutine
            value = await value
        return value

    def _function(self, tool: Tool) -> Callable[..., Any]:
        path = tool.config.get("callable")
        if path is None:
            if tool.name in BUILTINS:
                return BUILTINS[tool.name]
            raise LookupError(f"no built-in tool {tool.name!r} and no `callable` in its config")
        if not isinstance(path, str) or not _is_callable_path(path):
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


def _is_callable_path(path: str) -> bool:
    """``package.module:function``: absolute, every part a Python name."""
    module_name, colon, attribute = path.partition(":")
    names = [*module_name.split("."), attribute]
    return bool(colon) and all(name.isidentifier() for name in names)
