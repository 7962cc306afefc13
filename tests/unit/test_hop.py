"""The async API's one hop (``in_worker_thread``) and the worker threads behind it."""

from __future__ import annotations

import asyncio
import contextvars
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from agentkeep.db import hop
from agentkeep.db.hop import LIMIT, POOL, Call, WorkerThreads
from agentkeep.repositories.base import in_worker_thread

WAIT = 10.0  # generous bound on anything that should happen at once: a failure, not a hang

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")


def on_asyncio(fn: Callable[[], Any]) -> Any:
    async def main() -> Any:
        return await fn()

    return asyncio.run(main())


class TestResult:
    def test_the_result_comes_back_from_a_named_worker_thread(self) -> None:
        def work(a: int, *, b: int) -> tuple[int, str, bool]:
            thread = threading.current_thread()
            return a + b, thread.name, thread.daemon

        total, name, daemon = on_asyncio(lambda: in_worker_thread(work, 1, b=2))
        assert total == 3
        assert name.startswith("agentkeep-worker-")
        assert daemon

    def test_the_callers_context_variables_are_seen_by_the_work(self) -> None:
        async def main() -> str:
            request_id.set("r-1")
            return await in_worker_thread(request_id.get)

        assert asyncio.run(main()) == "r-1"

    def test_sequential_calls_reuse_one_thread(self) -> None:
        def name() -> str:
            return threading.current_thread().name

        async def main() -> set[str]:
            return {await in_worker_thread(name) for _ in range(50)}

        assert len(asyncio.run(main())) == 1


class TestExceptions:
    def test_the_works_exception_reaches_the_caller(self) -> None:
        class BoomError(Exception):
            pass

        def work() -> None:
            raise BoomError("no")

        with pytest.raises(BoomError, match="no"):
            on_asyncio(lambda: in_worker_thread(work))

    def test_stop_iteration_becomes_a_runtime_error(self) -> None:
        def work() -> None:
            raise StopIteration

        with pytest.raises(RuntimeError, match="StopIteration"):
            on_asyncio(lambda: in_worker_thread(work))


class Gate:
    """A work function that runs until the test opens the gate, recording when it ended."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.gate = threading.Event()
        self.ended = False

    def __call__(self) -> str:
        self.started.set()
        assert self.gate.wait(WAIT)
        time.sleep(0.01)  # the end comes a little after the gate: it is waited for, not raced
        self.ended = True
        return "done"

    def open_when_started(self) -> None:
        def opener() -> None:
            assert self.started.wait(WAIT)
            time.sleep(0.1)  # the caller is cancelled meanwhile
            self.gate.set()

        threading.Thread(target=opener, daemon=True).start()


class TestCancellation:
    def test_a_cancelled_task_waits_for_the_work_then_is_cancelled(self) -> None:
        gate = Gate()

        async def main() -> None:
            task = asyncio.create_task(in_worker_thread(gate))
            await asyncio.to_thread(gate.started.wait, WAIT)
            gate.open_when_started()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert gate.ended

        asyncio.run(main())

    def test_a_timeout_waits_for_the_work(self) -> None:
        gate = Gate()
        gate.open_when_started()

        async def main() -> None:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(in_worker_thread(gate), 0.02)
            assert gate.ended

        asyncio.run(main())

    def test_an_anyio_cancel_scope_waits_for_the_work(self) -> None:
        gate = Gate()
        gate.open_when_started()

        async def main() -> None:
            with anyio.move_on_after(0.02) as scope:
                await in_worker_thread(gate)
            assert scope.cancelled_caught
            assert gate.ended

        anyio.run(main)

    def test_repeated_cancellation_still_waits_for_the_work(self) -> None:
        gate = Gate()

        async def main() -> None:
            task = asyncio.create_task(in_worker_thread(gate))
            await asyncio.to_thread(gate.started.wait, WAIT)
            gate.open_when_started()
            for _ in range(5):
                task.cancel()
                await asyncio.sleep(0.005)
            with pytest.raises(asyncio.CancelledError):
                await task
            assert gate.ended

        asyncio.run(main())

    def test_a_call_cancelled_before_it_started_never_runs(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(hop, "POOL", WorkerThreads(limit=1))
        gate = Gate()
        ran = threading.Event()

        async def main() -> None:
            busy = asyncio.create_task(in_worker_thread(gate))
            await asyncio.to_thread(gate.started.wait, WAIT)
            waiting = asyncio.create_task(in_worker_thread(ran.set))  # no thread free
            await asyncio.sleep(0.01)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting  # at once: the gate is still shut
            gate.gate.set()
            assert await busy == "done"
            assert await in_worker_thread(lambda: "next") == "next"  # the thread goes on

        asyncio.run(main())
        assert not ran.is_set()


class TestConcurrency:
    def test_many_concurrent_tasks_each_get_their_own_result(self) -> None:
        async def main() -> list[int]:
            async with anyio.create_task_group() as tg:
                results: list[int] = [0] * 200

                async def one(i: int) -> None:
                    results[i] = await in_worker_thread(lambda: i * i)

                for i in range(200):
                    tg.start_soon(one, i)
            return results

        assert anyio.run(main) == [i * i for i in range(200)]
        assert POOL.threads <= LIMIT

    def test_sixteen_blocking_calls_run_at_once(self) -> None:
        # what the SQLite group commit needs: concurrent writers wait in threads together
        barrier = threading.Barrier(16, timeout=WAIT)

        async def main() -> None:
            async with anyio.create_task_group() as tg:
                for _ in range(16):
                    tg.start_soon(in_worker_thread, barrier.wait)

        anyio.run(main)

    def test_threads_are_bounded_and_the_backlog_runs_after(self) -> None:
        pool = WorkerThreads(limit=2)
        running, most = 0, 0
        lock = threading.Lock()

        def work() -> int:
            nonlocal running, most
            with lock:
                running += 1
                most = max(most, running)
            time.sleep(0.02)
            with lock:
                running -= 1
            return 1

        async def main() -> int:
            loop = asyncio.get_running_loop()
            calls = [Call(loop, work) for _ in range(6)]
            for call in calls:
                pool.submit(call)
            return sum(await asyncio.gather(*(call.future for call in calls)))

        assert asyncio.run(main()) == 6
        assert most == 2
        assert pool.threads == 2

    def test_a_thread_that_cannot_start_is_not_counted(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        pool = WorkerThreads()

        def refuse(self: threading.Thread) -> None:
            raise RuntimeError("can't start new thread")

        async def main() -> None:
            call = Call(asyncio.get_running_loop(), lambda: None)
            with monkeypatch.context() as patch:
                patch.setattr(threading.Thread, "start", refuse)
                with pytest.raises(RuntimeError, match="new thread"):
                    pool.submit(call)

        asyncio.run(main())
        assert pool.threads == 0

    def test_idle_threads_end(self) -> None:
        pool = WorkerThreads(idle_timeout=0.05)

        async def main() -> None:
            call = Call(asyncio.get_running_loop(), lambda: None)
            pool.submit(call)
            await call.future

        asyncio.run(main())
        deadline = time.monotonic() + WAIT
        while pool.threads and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pool.threads == 0


class TestOtherEventLoops:
    def test_it_works_under_trio(self) -> None:
        pytest.importorskip("trio")

        async def main() -> int:
            return await in_worker_thread(lambda: 42)

        assert anyio.run(main, backend="trio") == 42


def test_worker_threads_do_not_hold_up_interpreter_exit() -> None:
    # one thread idle, one still busy in work nobody awaits any more: neither delays the exit
    script = (
        "import asyncio, time\n"
        "from agentkeep.repositories.base import in_worker_thread\n"
        "async def main():\n"
        "    await in_worker_thread(lambda: None)\n"
        "    asyncio.ensure_future(in_worker_thread(time.sleep, 60))\n"
        "    await asyncio.sleep(0.05)\n"
        "asyncio.new_event_loop().run_until_complete(main())\n"
    )
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", script], check=True, timeout=30)
    assert time.monotonic() - started < 10
