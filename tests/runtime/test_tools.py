"""Running tools: the ``callable`` allow-list, time limits, and failures the model is told about.

The callables live in a package written for each test under a fresh name, so "never imported" can
be checked in ``sys.modules``.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest

from agentkeep import Settings
from agentkeep.managers import tools as tools_module
from agentkeep.managers.tools import SYNC_TOOLS_AWAITED, ToolResult, ToolRunner
from agentkeep.models.config import Tool
from agentkeep.providers.base import ToolCall

pytestmark = pytest.mark.anyio

NOW = datetime.now(UTC)
LIMIT = 0.2  # seconds, the time limit in the timeout tests
SLACK = 0.3  # how much later than the limit the wait may end on a busy machine

TOOLS = """
import threading, time

finished = threading.Event()

def add(a, b):
    return a + b

def blocks(seconds):
    time.sleep(seconds)
    finished.set()
    return "done"

async def sleeps(seconds):
    import anyio
    try:
        await anyio.sleep(seconds)
    finally:
        finished.set()
    return "done"

def denied():
    raise PermissionError("no access to /secret")

def exits():
    raise SystemExit(3)

def an_object():
    return object()

def a_set():
    return {1}

def tuple_keys():
    return {(1, 2): "x"}

def circular():
    loop = []
    loop.append(loop)
    return loop

def big(size):
    return "x" * size

def with_nul():
    return "a\\x00b"

not_callable = 42
"""


@dataclass
class Packages:
    """``allowed`` (under AGENTKEEP_TOOL_MODULES) and ``lookalike`` (a name it prefixes)."""

    allowed: str
    lookalike: str


@pytest.fixture
def packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Packages]:
    allowed = f"aktools_{uuid.uuid4().hex[:8]}"
    names = Packages(allowed=allowed, lookalike=f"{allowed}_evil")
    for package in (names.allowed, names.lookalike):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
        (tmp_path / package / "box.py").write_text(textwrap.dedent(TOOLS))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield names
    for name in [m for m in sys.modules if m.startswith(allowed)]:
        del sys.modules[name]


def runner(*prefixes: str, timeout: float = 5.0) -> ToolRunner:
    return ToolRunner(
        Settings(database_url="memory", tool_modules=list(prefixes), tool_timeout=timeout)
    )


def tool(name: str, callable_path: str | None = None) -> Tool:
    config: dict[str, Any] = {} if callable_path is None else {"callable": callable_path}
    return Tool(id=uuid.uuid4(), name=name, config=config, created_at=NOW, updated_at=NOW)


async def call(run: ToolRunner, path: str | None, **arguments: Any) -> ToolResult:
    return await run.run((tool("t", path),), ToolCall("call_1", "t", arguments))


class TestAllowList:
    async def test_a_callable_under_a_listed_prefix_runs(self, packages: Packages) -> None:
        result = await call(runner(packages.allowed), f"{packages.allowed}.box:add", a=2, b=3)
        assert result == ToolResult("5")

    async def test_a_prefix_naming_the_module_itself_allows_it(self, packages: Packages) -> None:
        exact = runner(f"{packages.allowed}.box")
        assert await call(exact, f"{packages.allowed}.box:add", a=1, b=1) == ToolResult("2")

    @pytest.mark.parametrize(
        "path",
        [
            "{lookalike}.box:add",  # `pkg` does not allow `pkg_evil`
            "{allowed}box:add",  # nor `pkgbox`
            "oslo:system",  # `os` does not allow `oslo`
            "subprocess:run",  # nor anything else
        ],
    )
    async def test_a_callable_outside_the_prefixes_is_refused_and_never_imported(
        self, packages: Packages, path: str
    ) -> None:
        path = path.format(allowed=packages.allowed, lookalike=packages.lookalike)
        module = path.partition(":")[0]
        run = runner(packages.allowed, "os")
        before = set(sys.modules)
        result = await call(run, path)
        assert result.is_error
        assert result.content.startswith("t failed: PermissionError:")
        assert "AGENTKEEP_TOOL_MODULES" in result.content
        if module not in before:
            assert module not in sys.modules
        assert not {m for m in set(sys.modules) - before if "aktools" in m}

    async def test_os_does_not_allow_oslo(self, packages: Packages) -> None:
        result = await call(runner("os"), "oslo.config:cfg")
        assert result.is_error
        assert "PermissionError" in result.content
        assert "oslo" not in sys.modules
        assert "oslo.config" not in sys.modules

    async def test_no_prefixes_allows_nothing(self, packages: Packages) -> None:
        result = await call(runner(), f"{packages.allowed}.box:add", a=1, b=2)
        assert result.is_error
        assert "PermissionError" in result.content
        assert f"{packages.allowed}.box" not in sys.modules

    @pytest.mark.parametrize(
        "path",
        [":add", "{allowed}.box:", "{allowed}.box:add:x", ".box:add", "{allowed}..box:add",
         "{allowed}.box", "{allowed}.box:a-b", " {allowed}.box:add", 42, ["x"]],
    )  # fmt: skip
    async def test_a_malformed_callable_is_an_error_result_and_imports_nothing(
        self, packages: Packages, path: object
    ) -> None:
        if isinstance(path, str):
            path = path.format(allowed=packages.allowed)
        # even an empty prefix, which would match a relative or empty module name, allows nothing
        run = runner(packages.allowed, "")
        result = await run.run((tool("t", path),), ToolCall("call_1", "t", {}))  # type: ignore[arg-type]
        assert result.is_error
        assert "LookupError: `callable` must be 'package.module:function'" in result.content
        assert not [m for m in sys.modules if m.startswith(packages.allowed)]

    async def test_a_missing_function_or_a_value_that_is_not_callable_is_an_error_result(
        self, packages: Packages
    ) -> None:
        run = runner(packages.allowed)
        missing = await call(run, f"{packages.allowed}.box:nothing_here")
        assert missing.is_error
        assert "AttributeError" in missing.content
        value = await call(run, f"{packages.allowed}.box:not_callable")
        assert value.is_error
        assert "is not callable" in value.content

    async def test_a_tool_the_agent_does_not_have_is_an_error_result(self) -> None:
        result = await runner().run((tool("t"),), ToolCall("call_1", "other", {}))
        assert result == ToolResult("the agent has no tool named 'other'", is_error=True)

    async def test_a_tool_with_no_builtin_and_no_callable_is_an_error_result(self) -> None:
        result = await call(runner(), None)
        assert result.is_error
        assert "no built-in tool 't'" in result.content


class TestFailures:
    async def test_a_tool_raising_permission_error_is_an_error_result(
        self, packages: Packages
    ) -> None:
        result = await call(runner(packages.allowed), f"{packages.allowed}.box:denied")
        assert result == ToolResult(
            "t failed: PermissionError: no access to /secret", is_error=True
        )

    async def test_a_sync_tool_exiting_is_an_error_result_not_a_stopped_server(
        self, packages: Packages
    ) -> None:
        result = await call(runner(packages.allowed), f"{packages.allowed}.box:exits")
        assert result == ToolResult("t failed: SystemExit: 3", is_error=True)

    async def test_wrong_arguments_are_an_error_result(self, packages: Packages) -> None:
        result = await call(runner(packages.allowed), f"{packages.allowed}.box:add", a=1)
        assert result.is_error
        assert "TypeError" in result.content

    @pytest.mark.parametrize(("function", "shown"), [("an_object", '"<object object at'),
                                                     ("a_set", "\"{1}\"")])  # fmt: skip
    async def test_a_value_json_cannot_hold_is_sent_as_its_text(
        self, packages: Packages, function: str, shown: str
    ) -> None:
        result = await call(runner(packages.allowed), f"{packages.allowed}.box:{function}")
        assert not result.is_error
        assert result.content.startswith(shown)

    @pytest.mark.parametrize(("function", "error"), [("tuple_keys", "TypeError"),
                                                     ("circular", "ValueError")])  # fmt: skip
    async def test_a_value_that_cannot_be_serialised_is_an_error_result(
        self, packages: Packages, function: str, error: str
    ) -> None:
        result = await call(runner(packages.allowed), f"{packages.allowed}.box:{function}")
        assert result.is_error
        assert result.content.startswith(f"t failed: {error}:")


class TestStorableResults:
    """A result always fits in a ``tool`` message, so storing it cannot fail the turn."""

    async def test_a_result_over_the_content_limit_is_an_error_result(
        self, packages: Packages
    ) -> None:
        run = ToolRunner(
            Settings(database_url="memory", tool_modules=[packages.allowed], max_content_bytes=100)
        )
        fits = await call(run, f"{packages.allowed}.box:big", size=100)
        assert fits == ToolResult("x" * 100)
        over = await call(run, f"{packages.allowed}.box:big", size=101)
        assert over == ToolResult(
            "t returned 101 bytes; a result may have at most 100 (AGENTKEEP_MAX_CONTENT_BYTES)",
            is_error=True,
        )

    async def test_a_nul_character_is_replaced(self, packages: Packages) -> None:
        result = await call(runner(packages.allowed), f"{packages.allowed}.box:with_nul")
        assert result == ToolResult("a\ufffdb")


class TestTimeLimit:
    async def test_a_blocking_sync_tool_is_abandoned_at_the_limit(self, packages: Packages) -> None:
        run = runner(packages.allowed, timeout=LIMIT)
        started = time.perf_counter()
        result = await call(run, f"{packages.allowed}.box:blocks", seconds=1.0)
        elapsed = time.perf_counter() - started
        assert result == ToolResult(f"t took longer than {LIMIT} s", is_error=True)
        assert LIMIT <= elapsed < LIMIT + SLACK
        # the thread runs on until the tool returns; what it returns is discarded
        box = sys.modules[f"{packages.allowed}.box"]
        assert run.sync_tools.running == 1
        assert not box.finished.is_set()
        assert box.finished.wait(2.0)
        deadline = time.monotonic() + 2.0
        while run.sync_tools.running and time.monotonic() < deadline:
            time.sleep(0.01)
        assert run.sync_tools.running == 0

    async def test_an_async_tool_is_cancelled_at_the_limit(self, packages: Packages) -> None:
        run = runner(packages.allowed, timeout=LIMIT)
        started = time.perf_counter()
        result = await call(run, f"{packages.allowed}.box:sleeps", seconds=5.0)
        elapsed = time.perf_counter() - started
        assert result == ToolResult(f"t took longer than {LIMIT} s", is_error=True)
        assert LIMIT <= elapsed < LIMIT + SLACK
        assert sys.modules[f"{packages.allowed}.box"].finished.is_set()  # its `finally` ran

    async def test_sync_tools_past_their_limit_are_bounded(
        self, packages: Packages, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """When the running budget is spent on tools past their limit, the next sync call is
        refused at once, without another thread."""
        monkeypatch.setattr(tools_module, "SYNC_TOOLS_RUNNING", 2)
        release = threading.Event()
        run = runner(packages.allowed, timeout=1.0)  # time enough for a thread to start
        box = importlib.import_module(f"{packages.allowed}.box")
        monkeypatch.setattr(box, "blocks", lambda seconds: release.wait(timeout=seconds))
        results: list[ToolResult] = []

        async def stuck() -> None:
            results.append(await call(run, f"{packages.allowed}.box:blocks", seconds=5.0))

        async with anyio.create_task_group() as group:
            group.start_soon(stuck)
            group.start_soon(stuck)
        assert results == [ToolResult("t took longer than 1.0 s", is_error=True)] * 2
        assert run.sync_tools.running == 2
        threads = threading.active_count()
        started = time.perf_counter()
        refused = await call(run, f"{packages.allowed}.box:add", a=1, b=2)
        assert time.perf_counter() - started < LIMIT
        assert refused.is_error
        assert "2 sync tools are still running" in refused.content
        assert threading.active_count() <= threads + 1  # at most the worker that refused it
        release.set()
        deadline = time.monotonic() + 2.0
        while run.sync_tools.running and time.monotonic() < deadline:
            time.sleep(0.01)
        assert await call(run, f"{packages.allowed}.box:add", a=1, b=2) == ToolResult("3")

    async def test_slow_sync_tools_do_not_hold_up_the_stores_threads(
        self, packages: Packages, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The store's calls share anyio's default thread budget; tools have their own."""
        release = threading.Event()
        box = importlib.import_module(f"{packages.allowed}.box")
        monkeypatch.setattr(box, "blocks", lambda seconds: release.wait(timeout=seconds))
        run = runner(packages.allowed, timeout=5.0)
        try:
            async with anyio.create_task_group() as group:
                for _ in range(SYNC_TOOLS_AWAITED * 2):
                    group.start_soon(
                        partial(call, run, f"{packages.allowed}.box:blocks", seconds=5.0)
                    )
                with anyio.fail_after(2.0):
                    while run.sync_tools.running < SYNC_TOOLS_AWAITED:
                        await anyio.sleep(0.01)
                await anyio.sleep(0.05)
                assert run.sync_tools.running == SYNC_TOOLS_AWAITED  # the others wait
                started = time.perf_counter()
                await anyio.to_thread.run_sync(lambda: None)  # what every store call does
                assert time.perf_counter() - started < 0.1
                release.set()
        finally:
            release.set()
