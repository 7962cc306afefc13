"""Group commit: concurrent writes to a SQLite file share one transaction and one commit.

Why: with ``synchronous=FULL`` every SQLite ``COMMIT`` is an fsync, and the writers of one process
take turns on the service's writer lock. Sixteen threads appending at once therefore get one
thread's throughput: each waits for the others' fsyncs, then pays its own. One commit makes
everything in its transaction durable for the price of one fsync, so writes that are waiting
anyway are run in one transaction and committed together.

How ("natural" group commit, like LevelDB's write queue): a write joins a FIFO queue. The write at
its head is the leader: it takes the writer lock, then up to ``max_batch`` writes from the head of
the queue (itself and whatever arrived while it waited), runs them in one ``BEGIN IMMEDIATE`` …
``COMMIT`` and, only once the ``COMMIT`` has returned, hands every write its own result and wakes
it; the next write in the queue then leads. Nothing ever waits for company: a write that finds the
queue empty leads at once, as a batch of one, so an uncontended write costs what it did before;
batches form only while a commit is in progress.

Failures: a write that raises gets its own exception and the others go on: the batch runs inside
one savepoint, and when a write fails, what the batch did is rolled back to it and the batch is run
again without that write (writes rarely fail; a savepoint per write would cost every write). If
the transaction fails (``BEGIN``, ``COMMIT``, or an error that ends it), every write of the batch
gets that error and nothing of the batch is stored. Each write waits for the writer lock at most
the configured busy timeout, counted from when it was queued, like any other writer.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager
from itertools import islice
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import Connection

from agentkeep.db.translate import translate_errors
from agentkeep.errors import StorageError

T = TypeVar("T")

Begin = Callable[[float], AbstractContextManager[Connection]]
"""Opens a write transaction, waiting at most this many seconds for the writer lock; commits when
the block ends without an exception."""


class _Write(Generic[T]):
    """One queued write and, once its batch has committed (or failed), its outcome."""

    __slots__ = ("deadline", "done", "error", "result", "taken", "wake", "work")

    def __init__(self, work: Callable[[Connection], T], deadline: float) -> None:
        self.work = work
        self.deadline = deadline
        # set when done, or when it has become the head: to lead. Only a write that waits has
        # one (made under the queue's mutex before it waits): one that leads at once, the
        # uncontended case, never waits, so it skips making an Event (its lock and condition)
        self.wake: threading.Event | None = None
        self.taken = False  # part of a running batch
        self.done = False
        self.result: T | None = None
        self.error: BaseException | None = None

    def outcome(self) -> T:
        if self.error is not None:
            raise self.error
        return cast("T", self.result)


class GroupCommit:
    """Runs writes from many threads, committing those that wait at the same time together."""

    def __init__(self, begin: Begin, *, wait: float, max_batch: int = 64) -> None:
        self._begin = begin
        self._wait = wait
        self._max_batch = max_batch
        self._mutex = threading.Lock()
        self._queue: deque[_Write[Any]] = deque()

    @property
    def waiting(self) -> int:
        """Writes queued or running now."""
        return len(self._queue)

    def run(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` on a connection inside a write transaction; return its result once the
        transaction has committed.

        ``work`` must only use the connection it is given, and may be run more than once: when
        another write of its batch fails, the batch is undone and run again without that one.
        """
        write = _Write(work, time.monotonic() + self._wait)
        with self._mutex:
            self._queue.append(write)
            leads = len(self._queue) == 1
            if not leads and write.wake is None:
                write.wake = threading.Event()
        if not leads:
            try:
                cast("threading.Event", write.wake).wait()
            except BaseException:
                self._abandon(write)
                raise
            if write.done:
                return write.outcome()
        self._lead(write)
        return write.outcome()

    def _lead(self, leader: _Write[Any]) -> None:
        batch: list[_Write[Any]] = []
        try:
            with self._begin(max(0.0, leader.deadline - time.monotonic())) as conn:
                # taken only now: whatever queued while the writer lock was busy joins this commit
                with self._mutex:
                    batch = list(islice(self._queue, self._max_batch))
                    for write in batch:
                        write.taken = True
                _run(conn, batch)
        except Exception as exc:
            _fail(batch or [leader], exc)
        except BaseException:
            _fail(batch, StorageError("database error: the write was interrupted"))
            raise
        finally:
            self._finish(batch or [leader])

    def _finish(self, finished: list[_Write[Any]]) -> None:
        with self._mutex:
            for write in finished:
                head = self._queue.popleft()
                assert head is write, "a batch is always the head of the queue"
                write.done = True
                _wake(write)
            if self._queue:
                _wake(self._queue[0])

    def _abandon(self, write: _Write[Any]) -> None:
        """Take a write whose thread stopped waiting (an interrupt) out of the queue, unless a
        batch has it already; if it was about to lead, the next one leads instead."""
        with self._mutex:
            if write.taken or write.done or write not in self._queue:
                return
            was_head = self._queue[0] is write
            self._queue.remove(write)
            if was_head and self._queue:
                _wake(self._queue[0])


def _wake(write: _Write[Any]) -> None:
    if write.wake is not None:  # None: it leads, and does not wait
        write.wake.set()


def _run(conn: Connection, batch: list[_Write[Any]]) -> None:
    if len(batch) == 1:  # its failure is the transaction's: no savepoint needed
        with translate_errors():
            batch[0].result = batch[0].work(conn)
        return
    # One savepoint for the batch rather than one per write: each statement sent to SQLite lets
    # other threads take the GIL, and under load two more per write cost a fifth of the batch.
    # Straight to the driver, because SQLAlchemy's begin_nested() costs ~60x more.
    driver = conn.connection.driver_connection
    pending = batch
    while pending:
        _execute(driver, "SAVEPOINT agentkeep_batch")
        failed = _first_failure(conn, pending)
        if failed is None:
            _execute(driver, "RELEASE agentkeep_batch")
            return
        # raises if the error has ended the whole transaction: then the whole batch fails
        _execute(driver, "ROLLBACK TO agentkeep_batch")
        _execute(driver, "RELEASE agentkeep_batch")
        pending = [write for write in pending if write is not failed]


def _first_failure(conn: Connection, writes: list[_Write[Any]]) -> _Write[Any] | None:
    for write in writes:
        try:
            with translate_errors():
                write.result = write.work(conn)
        except Exception as exc:
            write.error = exc
            return write
    return None


def _execute(driver: Any, statement: str) -> None:
    try:
        driver.execute(statement)
    except Exception as exc:  # the driver's own error, which translate_errors does not know
        raise StorageError(f"database error: {exc}") from exc


def _fail(batch: list[_Write[Any]], error: BaseException) -> None:
    for write in batch:
        if write.error is None:  # a write that failed on its own keeps its own error
            write.error = error
