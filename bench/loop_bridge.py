"""A candidate async path for PostgreSQL, measured by ``bench.async_paths``: the same synchronous
code over psycopg's sync connection, run on the event loop with its waits awaited.

psycopg is written as generators that say what they wait for (the socket readable or
writable) and are resumed once it is; its sync connection waits by blocking, its async one by
awaiting. :class:`Connection` waits either way: as psycopg's own connection in any thread, and,
in code run by :func:`run` (a greenlet on the event loop's thread), by handing the wait to the
event loop and switching back when the socket is ready. A unit of work would stay one code path,
with no thread hop; SQLAlchemy's asyncio extension does the same one layer up (a greenlet per
call, an adapter around every cursor call), which is what makes it slow here.

Cancellation keeps the hop's promise: a caller cancelled while the code runs gets the
cancellation once it has finished (a statement is never abandoned half-way). :class:`Gate` would
keep units in flight on one loop within a pool's size. Not used by agentkeep itself: see the
benchmark page for why.
"""

from __future__ import annotations

import asyncio
import select
from collections.abc import Callable
from typing import Any, TypeVar

import greenlet
import psycopg
from psycopg import waiting

__all__ = ["Connection", "Gate", "bridged", "run"]

R = TypeVar("R")

_WAIT_R = int(waiting.Wait.R)
_WAIT_W = int(waiting.Wait.W)
_READY_R = int(waiting.Ready.R)
_READY_W = int(waiting.Ready.W)


class _Unit(greenlet.greenlet):  # type: ignore[misc]  # greenlet ships no types
    """The greenlet of a unit of work run by :func:`run`: its waits are the event loop's."""


def bridged() -> bool:
    """Whether the running code is a unit of work run by :func:`run` (its waits awaited)."""
    return type(greenlet.getcurrent()) is _Unit


async def run(fn: Callable[[], R]) -> R:
    """``fn()`` run on the event loop's thread; each time psycopg would block on a
    :class:`Connection`'s socket, the loop waits for it instead and runs other tasks. If the
    caller is cancelled meanwhile, ``fn`` still runs to its end, and the cancellation is raised
    then."""
    loop = asyncio.get_running_loop()
    unit = _Unit(fn)
    request: Any = unit.switch()
    cancelled: asyncio.CancelledError | None = None
    while not unit.dead:
        fileno, wanted = request
        try:
            ready = await _ready(loop, fileno, wanted)
        except asyncio.CancelledError as exc:  # finish the unit first, then give it up
            cancelled = exc
            continue
        request = unit.switch(ready)
    if cancelled is not None:
        raise cancelled
    return request  # type: ignore[no-any-return]


def _ready(loop: asyncio.AbstractEventLoop, fileno: int, wanted: int) -> asyncio.Future[int]:
    """A future of the readiness (psycopg's ``Ready`` flags) of ``fileno`` for ``wanted``."""
    future: asyncio.Future[int] = loop.create_future()
    state = [0]

    def wakeup(flag: int) -> None:
        state[0] |= flag
        if not future.done():
            future.set_result(state[0])

    if wanted & _WAIT_R:
        loop.add_reader(fileno, wakeup, _READY_R)
    if wanted & _WAIT_W:
        loop.add_writer(fileno, wakeup, _READY_W)

    def removed(_: asyncio.Future[int]) -> None:
        if wanted & _WAIT_R:
            loop.remove_reader(fileno)
        if wanted & _WAIT_W:
            loop.remove_writer(fileno)

    future.add_done_callback(removed)
    return future


def _wait_here(gen: Any, fileno: int) -> Any:
    """Drive psycopg's generator ``gen`` from a bridged unit: each wait is handed to the event
    loop (a writable socket, nearly always ready, is polled first without a round trip)."""
    parent = greenlet.getcurrent().parent
    assert parent is not None
    try:
        wanted = next(gen)
        while True:
            ready = 0
            if wanted & _WAIT_W and _writable(fileno):
                ready = _READY_W
            if not ready:
                ready = parent.switch((fileno, wanted))
            wanted = gen.send(ready)
    except StopIteration as done:
        return done.value
    except OSError as exc:  # as psycopg: the socket was closed under the connection
        raise psycopg.OperationalError("connection socket closed") from exc


def _writable(fileno: int) -> bool:
    poller = select.poll()
    poller.register(fileno, select.POLLOUT)
    return bool(poller.poll(0))


class Connection(psycopg.Connection[Any]):
    """psycopg's connection, whose waits a bridged unit of work hands to the event loop."""

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        if timeout is None and type(greenlet.getcurrent()) is _Unit:
            return _wait_here(gen, self.pgconn.socket)
        return super().wait(gen, interval, timeout)


class Gate:
    """At most ``size`` bridged units in flight on each event loop (see the module's
    documentation); units on other threads pass freely."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._by_loop: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}

    def of(self, loop: asyncio.AbstractEventLoop) -> asyncio.Semaphore:
        found = self._by_loop.get(loop)
        if found is None:
            for old in [other for other in self._by_loop if other.is_closed()]:
                del self._by_loop[old]
            found = self._by_loop[loop] = asyncio.Semaphore(self.size)
        return found
