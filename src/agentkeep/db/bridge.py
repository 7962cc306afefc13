"""PostgreSQL's short units of work run on the event loop: the same synchronous code, its waits
for the server awaited.

The async API runs a unit of work (plain synchronous code over the sync driver) in one hop to a
worker thread (``repositories.base.in_worker_thread``). On PostgreSQL nearly all of a short
unit's time is spent waiting for the server's answer, and the hop (two thread wake-ups) costs
about as much again. psycopg is written as generators that say what they wait for (the socket
readable, or writable) and are resumed once it is; its sync connection waits by blocking, its
async one by awaiting. :class:`Connection` waits either way: as psycopg's own connection in any
thread and, in a unit run by :func:`run` (a greenlet on the event loop's thread), by handing the
wait to the event loop and switching back when the socket is ready. So a unit's code stays one
code path, statements, translation of errors and all, and no thread is involved.

Cancellation keeps the hop's promise: a caller cancelled while its unit runs gets the
cancellation once the unit has finished (a unit of work is never left mid-statement or
mid-commit). The unit runs in a copy of the caller's context variables, as in the hop.

Whatever blocks in a bridged unit blocks the event loop, so only units that block on nothing but
the server run this way: PostgreSQL's (the server does the locking), of the operations that run
one short statement or one page through an index (``repositories.base``), and only while the
pool has an open connection to hand out at once (``DatabaseService.loop_units``): not one to
connect, nor one to wait for. Anything else takes the hop. Another thread may take that idle
connection first: the unit's checkout from the store's pool (:class:`Pool`) then raises
:class:`NoIdleConnectionError` instead of waiting with the loop blocked (the connections it
would wait for may be held by units that need the loop to finish), and the caller takes the hop
after all. So does a checkout whose idle connection must be replaced by a new one (past
``pool_recycle``, left over from before the server went away, or failing its ping): the connect
is a worker thread's.
"""

from __future__ import annotations

import asyncio
import contextvars
import select
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import greenlet
import psycopg
from psycopg import waiting
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection, QueuePool
from sqlalchemy.util import queue as sqla_queue

__all__ = ["Connection", "NoIdleConnectionError", "Pool", "run"]

R = TypeVar("R")

_WAIT_R = int(waiting.Wait.R)
_WAIT_W = int(waiting.Wait.W)
_READY_R = int(waiting.Ready.R)
_READY_W = int(waiting.Ready.W)


class _Unit(greenlet.greenlet):  # type: ignore[misc]  # greenlet ships no types
    """The greenlet of a unit run by :func:`run`: its waits are the event loop's."""

    checked_out = False
    """Whether it took a connection from a :class:`Pool` already (its first checkout ended)."""


class NoIdleConnectionError(Exception):
    """Raised by a unit run by :func:`run` whose first connection the pool cannot hand out at
    once: nothing has run yet, so the caller runs the unit in a worker thread instead."""


class Pool(QueuePool):
    """The store's PostgreSQL pool. In a unit run by :func:`run`, the first checkout takes an
    idle connection that is ready for use, or raises :class:`NoIdleConnectionError`: it neither
    connects (:meth:`Connection.connect`) nor waits (either would block the event loop, and
    waiting could wait for units that need the loop to finish). Nor does it take one while
    worker threads wait for a connection (:attr:`waiting`): the loop would take every connection
    handed back before a woken thread could, and the threads would wait until their
    ``pool_timeout`` ran out."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._waiting = 0
        self._waiting_lock = threading.Lock()

    @property
    def waiting(self) -> int:
        """Checkouts waiting for a connection (none was idle)."""
        return self._waiting

    def connect(self) -> PoolProxiedConnection:
        connection = super().connect()
        unit = greenlet.getcurrent()
        if type(unit) is _Unit:
            unit.checked_out = True
        return connection

    def _do_get(self) -> ConnectionPoolEntry:
        unit = greenlet.getcurrent()
        first_on_loop = type(unit) is _Unit and not unit.checked_out
        if first_on_loop and self._waiting:
            raise NoIdleConnectionError
        try:
            return self._pool.get(False)
        except sqla_queue.Empty:
            if first_on_loop:
                raise NoIdleConnectionError from None
        with self._waiting_lock:
            self._waiting += 1
        try:
            return super()._do_get()
        finally:
            with self._waiting_lock:
                self._waiting -= 1


async def run(fn: Callable[[], R]) -> R:
    """``fn()`` run on the event loop's thread; each time psycopg would block on a
    :class:`Connection`'s socket, the loop waits for it instead and runs other tasks. If the
    caller is cancelled meanwhile, ``fn`` still runs to its end, and the cancellation is raised
    then, whatever ``fn`` returned or raised (as a worker thread's hop does: a caller that gave
    up on the call gets no outcome of it, and a :class:`NoIdleConnectionError` after the
    pool's ping of a dead connection sends no cancelled call to a worker thread)."""
    loop = asyncio.get_running_loop()
    unit = _Unit(fn)
    unit.gr_context = contextvars.copy_context()
    request: Any = unit.switch()
    cancelled: asyncio.CancelledError | None = None
    while not unit.dead:
        fileno, wanted = request
        future = _watch(loop, fileno, wanted)
        try:
            while not future.done():
                try:
                    # once cancelled, the wait is shielded: anyio's cancel scopes cancel again
                    # at every turn of the loop, and an unshielded wait would never end
                    await (future if cancelled is None else asyncio.shield(future))
                except asyncio.CancelledError as exc:  # finish the unit first, then give up
                    cancelled = exc
                    if future.cancelled():  # the first cancellation took the wait with it
                        future = _watch(loop, fileno, wanted)
        finally:
            # at once, not in a done callback: the unit's next wait may watch the same socket
            _unwatch(loop, fileno, wanted)
        try:
            request = unit.switch(future.result())
        except Exception as error:
            if cancelled is None:
                raise
            raise cancelled from error
    if cancelled is not None:
        raise cancelled
    return request  # type: ignore[no-any-return]


def _watch(loop: asyncio.AbstractEventLoop, fileno: int, wanted: int) -> asyncio.Future[int]:
    """A future of the readiness (psycopg's ``Ready`` flags) of ``fileno`` for ``wanted``; it
    replaces any earlier watch of the socket. :func:`_unwatch` ends the watch."""
    future: asyncio.Future[int] = loop.create_future()

    def wakeup(flag: int) -> None:
        if not future.done():
            future.set_result(flag)

    if wanted & _WAIT_R:
        loop.add_reader(fileno, wakeup, _READY_R)
    if wanted & _WAIT_W:
        loop.add_writer(fileno, wakeup, _READY_W)
    return future


def _unwatch(loop: asyncio.AbstractEventLoop, fileno: int, wanted: int) -> None:
    if wanted & _WAIT_R:
        loop.remove_reader(fileno)
    if wanted & _WAIT_W:
        loop.remove_writer(fileno)


def _wait_on_loop(gen: Any, fileno: int) -> Any:
    """Drive psycopg's generator ``gen`` from a bridged unit: each wait is handed to the event
    loop (a writable socket, nearly always ready, is polled first without a round trip)."""
    parent = greenlet.getcurrent().parent
    try:
        wanted = next(gen)
        while True:
            ready = _READY_W if wanted & _WAIT_W and _writable(fileno) else 0
            if not ready:
                ready = parent.switch((fileno, wanted))
            wanted = gen.send(ready)
    except StopIteration as done:
        return done.value
    except OSError as exc:  # as psycopg says it: the socket was closed under the connection
        raise psycopg.OperationalError("connection socket closed") from exc


def _writable(fileno: int) -> bool:
    poller = select.poll()
    poller.register(fileno, select.POLLOUT)
    return bool(poller.poll(0))


class Connection(psycopg.Connection[Any]):
    """psycopg's connection, whose waits a bridged unit of work hands to the event loop."""

    @classmethod
    def connect(cls, *args: Any, **kwargs: Any) -> Any:
        """A new connection; in the first checkout of a unit run by :func:`run` (the idle
        connection it took must be replaced), :class:`NoIdleConnectionError` instead: the pool
        takes its entry back, and the caller's worker thread, not the event loop, waits for the
        connect."""
        unit = greenlet.getcurrent()
        if type(unit) is _Unit and not unit.checked_out:
            raise NoIdleConnectionError
        return super().connect(*args, **kwargs)

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        if timeout is None and type(greenlet.getcurrent()) is _Unit:
            return _wait_on_loop(gen, self.pgconn.socket)
        return super().wait(gen, interval, timeout)
