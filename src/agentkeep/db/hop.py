"""Worker threads for the async API's hop (``repositories.base.in_worker_thread``).

Why not ``anyio.to_thread.run_sync``: every async store call is one hop, and on asyncio anyio's
costs about 2.3x this one on a no-op (a checkpoint before the hop, a capacity limiter and a
cancel scope around it, a two-slot queue per thread). Measured on the 2-core benchmark machine,
5,000 sequential awaits of a no-op: anyio 167 µs, ``asyncio.to_thread`` 146 µs,
``run_in_executor`` 131 µs, this pool 74 µs. Other event loops (trio) still go through anyio.

How: a process-wide pool of at most ``limit`` named daemon threads. An idle thread waits on its
own inbox; a call goes to the thread that became idle last (it is the one most likely to be warm
in the CPU caches), or starts a new thread while fewer than ``limit`` run, or else waits in the
backlog, which a thread drains before it goes idle. The result (or exception) is handed back by
resolving an asyncio future with ``loop.call_soon_threadsafe``. A thread idle for
``idle_timeout`` seconds ends. Threads are daemon and nothing joins them at exit; a process
forked while the pool runs starts with an empty pool.

Cancellation is the caller's business (``in_worker_thread``): a call still waiting for a thread
can be withdrawn (:meth:`Call.withdraw`); once a thread has started it, it runs to its end, and
:meth:`Call.finished` waits for that end.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import os
import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import anyio

try:
    from sniffio import current_async_library
except ImportError:  # no trio either (it needs sniffio): asyncio is the only event loop

    def current_async_library() -> str:
        return "asyncio"


__all__ = ["LIMIT", "POOL", "Call", "WorkerThreads", "current_async_library"]

T = TypeVar("T")

LIMIT = 40
"""Threads at most, as anyio's default; a SQLite group commit needs concurrent writers to wait in
threads at once to batch them."""

IDLE_TIMEOUT = 10.0
"""Seconds an idle thread waits for work before it ends (anyio's figure)."""


class Call(Generic[T]):
    """One function call handed to a worker thread, and the future that gets its outcome."""

    __slots__ = ("_claim", "context", "done", "fn", "future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, fn: Callable[[], T]) -> None:
        self.loop = loop
        self.fn = fn
        self.context = contextvars.copy_context()  # the caller's context vars, as anyio does
        self.future: asyncio.Future[T] = loop.create_future()
        self.done = False
        """The call has returned or raised (set on the event loop's thread)."""
        self._claim = threading.Lock()  # taken by the worker that runs it, or by withdraw()

    def withdraw(self) -> bool:
        """Make sure the call never runs, if no thread has started it yet: whether it will not."""
        return self._claim.acquire(blocking=False)

    def run(self) -> tuple[Any, BaseException | None] | None:
        """In the worker thread: run the call; its result, or what it raised (``None``: it was
        withdrawn before it started)."""
        if not self._claim.acquire(blocking=False):
            return None
        try:
            return self.context.run(self.fn), None
        except BaseException as exc:  # handed to the awaiting task, not swallowed
            return None, exc

    def report(self, outcome: tuple[Any, BaseException | None]) -> None:
        """From the worker thread: hand ``outcome`` to the awaiting task on its event loop."""
        # a closed loop (RuntimeError) has nobody awaiting the outcome any more
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self._resolve, *outcome)

    def _resolve(self, result: T, error: BaseException | None) -> None:
        self.done = True
        future = self.future
        if future.done():  # cancelled: the caller waits in finished(), or has gone
            return
        if error is None:
            future.set_result(result)
        elif isinstance(error, StopIteration):  # a future refuses it
            future.set_exception(RuntimeError("the function raised StopIteration"))
        else:
            future.set_exception(error)

    async def finished(self) -> None:
        """Wait until the call has ended (its outcome is discarded), whatever cancels the
        waiting task in between: used once the awaiting task has been cancelled."""
        # shielded: anyio re-delivers a cancel scope's cancellation until the task leaves it
        with anyio.CancelScope(shield=True):
            while not self.done:
                self.future = self.loop.create_future()
                # a native cancellation again, or the call's own error: wait on regardless
                with contextlib.suppress(BaseException):
                    await self.future


class _Worker:
    __slots__ = ("inbox",)

    def __init__(self) -> None:
        self.inbox: queue.SimpleQueue[Call[Any]] = queue.SimpleQueue()


class WorkerThreads:
    """The pool: at most ``limit`` threads, the last one to become idle served first."""

    def __init__(self, limit: int = LIMIT, idle_timeout: float = IDLE_TIMEOUT) -> None:
        self.limit = limit
        self.idle_timeout = idle_timeout
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []  # a stack: the last one idle is the warmest
        self._backlog: deque[Call[Any]] = deque()
        self._threads = 0
        self._names = itertools.count(1)

    @property
    def threads(self) -> int:
        """Threads running now, busy or idle."""
        return self._threads

    def submit(self, call: Call[Any]) -> None:
        """Run ``call`` in a worker thread as soon as one is free."""
        with self._lock:
            if self._idle:
                self._idle.pop().inbox.put(call)
                return
            if self._threads >= self.limit:
                self._backlog.append(call)
                return
            self._threads += 1
            name = f"agentkeep-worker-{next(self._names)}"
        try:
            threading.Thread(target=self._serve, args=(call,), name=name, daemon=True).start()
        except BaseException:  # no thread (the system's limit): the caller gets the error
            with self._lock:
                self._threads -= 1
            raise

    def _serve(self, call: Call[Any]) -> None:
        worker = _Worker()
        while True:
            outcome = call.run()  # None: withdrawn, nobody waits for it
            # idle (or on to the backlog) before reporting: the caller's next call, which may
            # follow at once, then finds this thread, warm, instead of starting another
            with self._lock:
                following = self._backlog.popleft() if self._backlog else None
                if following is None:
                    self._idle.append(worker)
            if outcome is not None:
                call.report(outcome)
            del call, outcome  # nothing of a finished call is kept while idle
            if following is not None:
                call = following
                continue
            try:
                call = worker.inbox.get(timeout=self.idle_timeout)
            except queue.Empty:
                with self._lock:
                    if worker in self._idle:  # nothing was handed over meanwhile: end
                        self._idle.remove(worker)
                        self._threads -= 1
                        return
                call = worker.inbox.get()  # handed over just as the wait ran out

    def _forget(self) -> None:
        """After a fork: the child has none of the parent's threads."""
        self._lock = threading.Lock()
        self._idle.clear()
        self._backlog.clear()
        self._threads = 0


POOL = WorkerThreads()
"""The process's worker threads for the async API."""

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=POOL._forget)
