"""The workload driver, the same code for every subject (stdlib only; runs in both venvs).

A subject wraps one library (or the raw driver) behind :class:`Subject`; :func:`run` drives a
group of subjects that share one database (usually a group of one) through the workloads and
returns a JSON-ready dict per subject. Only the calls a user of the library makes are timed;
set-up (bulk fills, creating the conversations W1 appends to) is not.

- W1: ``w1_conversations`` x ``w1_messages`` appends, one acknowledged call each, conversation
  by conversation, after 10 untimed appends to a conversation of their own; the rate is appends
  over the wall time of the loop. A subject slower than ``w1_budget_s`` stops at a conversation
  boundary (after at least 5), so every conversation it made is complete and the rate is over
  whole conversations. Storage is the growth of the database over W1 divided by the appends.
- W1c: ``clients`` concurrent clients, each appending to its own conversation (subjects that
  support it: agentkeep and the raw driver), the same number of appends as W1 or until
  ``w1_budget_s`` has passed; the rate is appends made over the wall time.
- reads: W3's first ``w3_small`` conversations (``w3_users`` users), then W2 (full history and
  last 50 of a ``w2_messages``-message conversation), the list at ``w3_small``, the fill to
  ``w3_large`` conversations and the list again.
- growth: one conversation filled to each length in turn; at each, single appends and last-50
  loads, each timed.

After each bulk fill a PostgreSQL database is ANALYZEd (:meth:`Subject.settle`).

A read is sampled ``loads`` times after one untimed warm-up call, or fewer (never under 5) when
the samples take longer than ``read_budget_s``; growth samples likewise (at least 3) with its own
budget.
"""

from __future__ import annotations

import sqlite3
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from bench.compare.workload import Msg, Sizes, message, messages, users

W1_USER = "w1-user"
W1_MIN_CONVERSATIONS = 5
W1_WARM_UP = 10
LAST_N = 50
LIST_LIMIT = 20
SLOW_MS = 100.0


class Unsupported(Exception):  # noqa: N818 - reads as the answer it is: "unsupported"
    """The library has no API for this operation."""


class Subject:
    """One library on one backend; subclasses override what the library can do."""

    label = "?"
    kind = "sync"
    """``sync`` or ``async``: which agentkeep API a like-for-like comparison uses."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.durability = "?"
        self.versions: dict[str, str] = {}
        self.notes: list[str] = []
        self.fill_how = ""

    async def create_conversation(self, user: str) -> Any:
        raise NotImplementedError

    async def append(self, conv: Any, msg: Msg) -> None:
        raise NotImplementedError

    async def fill_messages(self, conv: Any, msgs: Sequence[Msg]) -> None:
        """Add ``msgs`` at the end of ``conv`` by the fastest faithful route (untimed)."""
        raise NotImplementedError

    async def create_conversations(self, owners: Sequence[str]) -> None:
        """One conversation per entry, owned by that user (untimed, bulk where possible)."""
        for owner in owners:
            await self.create_conversation(owner)

    async def load_all(self, conv: Any) -> int:
        raise NotImplementedError

    async def load_last(self, conv: Any, n: int) -> int:
        raise NotImplementedError

    async def list_user(self, user: str, limit: int) -> int:
        raise Unsupported

    async def append_concurrently(
        self, convs: Sequence[Any], per_client: int, deadline: float
    ) -> int:
        """Append from one client per conversation at once, each until it has made
        ``per_client`` appends or ``time.perf_counter()`` passes ``deadline``; return how many
        appends were made."""
        raise Unsupported

    async def storage_bytes(self) -> int:
        if self.spec["backend"] == "sqlite":
            return sqlite_bytes(self.spec["sqlite_path"])
        return postgres_bytes(self.spec["pg_dsn"])

    async def settle(self) -> None:
        """After a bulk fill: on PostgreSQL, ANALYZE, as autovacuum does soon after such a load
        (measured right after it, the planner would still see the empty tables' statistics and
        pick plans no running database would). SQLite analyzes nothing by itself: left as is."""
        if self.spec["backend"] == "postgres":
            import psycopg

            with psycopg.connect(self.spec["pg_dsn"], autocommit=True) as conn:
                conn.execute("ANALYZE")

    async def close(self) -> None:
        return None


# --- timing -----------------------------------------------------------------------------------


def summary(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    p95 = statistics.quantiles(ordered, n=20)[-1] if len(ordered) >= 2 else ordered[-1]
    return {"p50": statistics.median(ordered), "p95": p95, "n": len(ordered)}


async def sample(
    call: Callable[[], Awaitable[Any]], count: int, budget_s: float, minimum: int = 5
) -> tuple[list[float], Any]:
    """Durations (ms) of ``call()`` after one warm-up, and what the last call returned.

    A warm-up slower than ``SLOW_MS`` counts as a sample: first-call effects are lost in it, and
    repeating second-long calls would only spend the budget."""
    t0 = time.perf_counter()
    last = await call()
    first = (time.perf_counter() - t0) * 1000
    out: list[float] = [first] if first > SLOW_MS else []
    started = time.perf_counter()
    while len(out) < count and (len(out) < minimum or time.perf_counter() - started < budget_s):
        t0 = time.perf_counter()
        last = await call()
        out.append((time.perf_counter() - t0) * 1000)
    return out, last


# --- workloads --------------------------------------------------------------------------------


async def run(
    subjects: Sequence[Subject], sizes: Sizes, workloads: Sequence[str]
) -> list[dict[str, Any]]:
    """Drive ``subjects``, which share one database: each makes its own W1 conversations; the
    fills are made once, by the first, and every subject reads and grows the same data."""
    results: list[dict[str, Any]] = [{"phases": {}} for _ in subjects]
    for name in ("w1", "w1c"):
        if name in workloads:
            for subject, result in zip(subjects, results, strict=True):
                started = time.perf_counter()
                result[name] = await (w1 if name == "w1" else w1_concurrent)(subject, sizes)
                result["phases"][name] = time.perf_counter() - started
    for name, work in (("reads", reads), ("growth", growth)):
        if name in workloads:
            started = time.perf_counter()
            for result, found in zip(results, await work(subjects, sizes), strict=True):
                result.update(found)
                result["phases"][name] = time.perf_counter() - started
    for subject, result in zip(subjects, results, strict=True):
        result.update(
            label=subject.label,
            kind=subject.kind,
            durability=subject.durability,
            versions=subject.versions,
            notes=subject.notes,
            fill_how=subject.fill_how,
        )
    return results


async def w1(subject: Subject, sizes: Sizes) -> dict[str, Any]:
    warm = await subject.create_conversation(W1_USER)
    for i in range(W1_WARM_UP):  # first-call costs (statement caches, lazy set-up) are not W1's
        await subject.append(warm, message(i))
    convs = [await subject.create_conversation(W1_USER) for _ in range(sizes.w1_conversations)]
    before = await subject.storage_bytes()
    made = 0
    started = time.perf_counter()
    for done, conv in enumerate(convs, start=1):
        for i in range(sizes.w1_messages):
            await subject.append(conv, message(i))
        made += sizes.w1_messages
        if done >= W1_MIN_CONVERSATIONS and time.perf_counter() - started > sizes.w1_budget_s:
            break
    seconds = time.perf_counter() - started
    grown = await subject.storage_bytes() - before
    return {
        "appends": made,
        "conversations": made // sizes.w1_messages,
        "seconds": seconds,
        "rate": made / seconds,
        "bytes_per_message": grown / made,
    }


async def w1_concurrent(subject: Subject, sizes: Sizes) -> dict[str, Any] | None:
    per_client = sizes.w1_conversations * sizes.w1_messages // sizes.clients
    convs = [await subject.create_conversation(W1_USER) for _ in range(sizes.clients)]
    started = time.perf_counter()
    try:
        made = await subject.append_concurrently(convs, per_client, started + sizes.w1_budget_s)
    except Unsupported:
        return None
    seconds = time.perf_counter() - started
    return {"clients": sizes.clients, "appends": made, "seconds": seconds, "rate": made / seconds}


async def reads(subjects: Sequence[Subject], sizes: Sizes) -> list[dict[str, Any]]:
    filler = subjects[0]
    people = users(sizes.w3_users)
    owners = [people[i % len(people)] for i in range(sizes.w3_large)]
    await filler.create_conversations(owners[: sizes.w3_small])
    conv = await filler.create_conversation("w2-user")
    await filler.fill_messages(conv, messages(0, sizes.w2_messages))
    await filler.settle()
    user = people[len(people) // 2]
    out = [{"w2": await _w2(s, conv, sizes), "w3": {}} for s in subjects]
    for result, subject in zip(out, subjects, strict=True):
        result["w3"][str(sizes.w3_small)] = await _list(subject, user, sizes)
    await filler.create_conversations(owners[sizes.w3_small :])
    await filler.settle()
    for result, subject in zip(out, subjects, strict=True):
        result["w3"][str(sizes.w3_large)] = await _list(subject, user, sizes)
    return out


async def _w2(subject: Subject, conv: Any, sizes: Sizes) -> dict[str, Any]:
    full, full_n = await sample(lambda: subject.load_all(conv), sizes.loads, sizes.read_budget_s)
    last, last_n = await sample(
        lambda: subject.load_last(conv, LAST_N), sizes.loads, sizes.read_budget_s
    )
    return {
        "full": {**summary(full), "returned": full_n},
        "last": {**summary(last), "returned": last_n},
    }


async def _list(subject: Subject, user: str, sizes: Sizes) -> dict[str, Any] | None:
    try:
        took, returned = await sample(
            lambda: subject.list_user(user, LIST_LIMIT), sizes.loads, sizes.read_budget_s
        )
    except Unsupported:
        return None
    return {**summary(took), "returned": returned}


async def growth(subjects: Sequence[Subject], sizes: Sizes) -> list[dict[str, Any]]:
    filler = subjects[0]
    conv = await filler.create_conversation("growth-user")
    have = 0
    out: list[dict[str, Any]] = [{"growth": {}} for _ in subjects]
    for length in sizes.growth:
        await filler.fill_messages(conv, messages(have, length - have))
        await filler.settle()
        have = length
        for result, subject in zip(out, subjects, strict=True):
            result["growth"][str(length)], have = await _grown(subject, conv, have, sizes)
    return out


async def _grown(
    subject: Subject, conv: Any, have: int, sizes: Sizes
) -> tuple[dict[str, Any], int]:
    """Single appends, then last-50 loads, at the conversation's current length (``have``);
    returns the timings and the length after the appends."""
    count = have

    async def append_one() -> None:
        nonlocal count
        await subject.append(conv, message(count))
        count += 1

    budget, samples = sizes.growth_budget_s, sizes.growth_samples
    appended, _ = await sample(append_one, samples, budget, minimum=3)
    loaded, _ = await sample(lambda: subject.load_last(conv, LAST_N), samples, budget, minimum=3)
    return {"append": summary(appended), "last": summary(loaded)}, count


# --- storage ----------------------------------------------------------------------------------


def sqlite_bytes(path: str) -> int:
    """Bytes the database's live pages take, after moving the WAL's pages into the file."""
    conn = sqlite3.connect(path, timeout=30)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)
    finally:
        conn.close()


def postgres_bytes(dsn: str) -> int:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return int(row[0]) if row else 0


def sqlite_durability(conn: Any) -> str:
    """``journal_mode`` and ``synchronous`` as a DB-API connection reports them."""
    cursor = conn.cursor()
    journal = cursor.execute("PRAGMA journal_mode").fetchone()[0]
    level = cursor.execute("PRAGMA synchronous").fetchone()[0]
    cursor.close()
    names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    return f"journal_mode={str(journal).upper()}, synchronous={names.get(int(level), level)}"
