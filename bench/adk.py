"""ADK session benchmark: ADK's own SQL session services against AgentkeepSessionService.

    python -m bench.adk            # full sizes, prints a markdown table
    python -m bench.adk --quick    # small sizes (a smoke run)

Everything goes through ADK's ``BaseSessionService`` API, on a SQLite file each (ADK's
``DatabaseSessionService`` over ``sqlite+aiosqlite``, ADK's ``SqliteSessionService`` over
aiosqlite, and agentkeep's store on its default SQLite file settings: WAL, synchronous=FULL):

- append: N events (a user text of ~200 characters and a one-key state delta) to one session,
  each awaited before the next; events per second;
- load: that whole session (``get_session``), median ms;
- last 50: ``get_session(config=GetSessionConfig(num_recent_events=50))``, median ms;
- list: one user's sessions (``list_sessions(app_name, user_id)``) among S sessions of 100 users,
  median ms.

PostgreSQL is not measured here: ADK's database service would need an async PostgreSQL driver
wired to the embedded server; agentkeep's PostgreSQL numbers are in ``bench.store``.
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

APP = "bench_app"
TEXT = ("I bought coffee for 300 roubles and a croissant at the station. " * 4)[:200]


@dataclass
class Sizes:
    events: int = 1000
    sessions: int = 10_000
    reads: int = 20


QUICK = Sizes(events=60, sessions=200, reads=5)


@dataclass
class Result:
    subject: str
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


async def measure(subject: str, service: BaseSessionService, sizes: Sizes) -> Result:
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

    async def list_one_user() -> None:
        listed = await service.list_sessions(app_name=APP, user_id="user7")
        result.listed = len(listed.sessions)

    result.list_ms = await _median_ms(list_one_user, sizes.reads)
    return result


async def run_all(sizes: Sizes) -> list[Result]:
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


def run(sizes: Sizes) -> list[Result]:
    return asyncio.run(run_all(sizes))


def table(results: list[Result], sizes: Sizes) -> str:
    ours = results[-1]
    lines = [
        f"{sizes.events:,} events to one session; list among {sizes.sessions:,} sessions "
        f"of 100 users; SQLite files; medians of {sizes.reads} reads.",
        "",
        "| service | append (events/s) | load all (ms) | last 50 (ms) | list one user (ms) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r.subject} | {r.append_per_s:,.0f} | {r.load_ms:.1f} | {r.last50_ms:.2f} "
            f"| {r.list_ms:.2f} |"
        )
    for r in results[:-1]:
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
    print(table(run(sizes), sizes))


if __name__ == "__main__":
    main()
