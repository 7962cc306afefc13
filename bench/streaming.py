"""Streaming benchmark: what the server adds to a chat turn, with the offline echo model.

    python -m bench.streaming            # full run, writes the "streaming" section
    python -m bench.streaming --quick    # small sizes, prints only

The echo model answers at once (no network, no delay), so everything between sending a message
and receiving its first ``token`` event is the server's own cost: validating the request, the
agent cache, one transaction that stores the user's message and the ``streaming`` reply and reads
the history, the prompt, and the SSE framing. Measured over HTTP against the real server
(``agentkeep serve`` in its own process), the client in a process of its own
(``bench.http_clients``), on SQLite (WAL, synchronous=FULL) and PostgreSQL, one client:

- time to first token: ``POST /api/v1/streaming/send`` to the first ``token`` event, p50/p99;
- tokens per second on one connection: a reply of several thousand tokens, from its first token
  to its last;
- the same turn through the runtime in process (no HTTP), to show what HTTP and SSE add.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio
import httpx
import sse_starlette

import agentkeep
from agentkeep import AgentCreate, ConversationCreate, Settings
from agentkeep.managers.agents import AgentManager
from agentkeep.managers.chat import ChatRuntime, TurnInput
from bench.http import server
from bench.http_clients import StreamJob, run_stream_job
from bench.report import on_both_backends, write_section

TARGET_FIRST_TOKEN_MS = 5.0
TARGET_TOKENS_PER_S = 5_000


@dataclass
class Sizes:
    turns: int = 300
    long_words: int = 5_000
    long_turns: int = 5


@dataclass
class Result:
    backend: str
    first_token: dict[str, list[float]] = field(default_factory=dict)
    """subject ("HTTP (SSE)" / "in process") -> milliseconds to the first token, per turn."""
    tokens_per_s: list[float] = field(default_factory=list)
    per_token_us: list[float] = field(default_factory=list)


def setup(settings: Settings) -> uuid.UUID:
    """An echo agent and a conversation with it (history off: every turn costs the same)."""
    with agentkeep.connect_sync(settings) as db:
        agent = db.agents.create(AgentCreate(name="bench", provider="echo", include_history=False))
        return db.conversations.create(ConversationCreate(agent_id=agent.id, user_id="u")).id


def over_http(base_url: str, cid: uuid.UUID, sizes: Sizes, result: Result) -> None:
    """The turns from a client process of its own, so the server's process only serves."""
    job = StreamJob(base_url, str(cid), sizes.turns, sizes.long_words, sizes.long_turns)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        timing = pool.apply(run_stream_job, (job,))
    result.first_token["HTTP (SSE)"] = timing.first_token_ms
    result.tokens_per_s = timing.tokens_per_s
    result.per_token_us = timing.per_token_us


async def in_process(settings: Settings, cid: uuid.UUID, sizes: Sizes, result: Result) -> None:
    db = agentkeep.connect(settings, upgrade=False)
    chat = ChatRuntime(db, AgentManager(db, settings), settings)
    try:

        async def first_token(content: str) -> float:
            sent = time.perf_counter()
            first = None
            turn = await chat.send(cid, TurnInput(content=content))
            async for event in turn.events():
                if event.event == "token" and first is None:
                    first = time.perf_counter()
            assert first is not None
            return (first - sent) * 1000

        for _ in range(10):
            await first_token("warm up")
        result.first_token["in process"] = [
            await first_token(f"message {i} about the quarterly numbers")
            for i in range(sizes.turns)
        ]
    finally:
        await db.aclose()


def bench_backend(backend: str, database_url: str, sizes: Sizes) -> Result:
    print(f"{backend}:", flush=True)
    settings = Settings(database_url=database_url)
    cid = setup(settings)
    result = Result(backend)
    with server(database_url) as (base_url, _):
        over_http(base_url, cid, sizes, result)
    anyio.run(in_process, settings, cid, sizes, result)
    for subject, values in result.first_token.items():
        print(f"  first token, {subject:<11} p50 {p50(values):6.2f} ms  p99 {p99(values):6.2f} ms")
    print(f"  one connection: {statistics.median(result.tokens_per_s):,.0f} tokens/s", flush=True)
    return result


def p50(values: list[float]) -> float:
    return statistics.median(values)


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) > 1 else values[0]


def run(sizes: Sizes, write: bool) -> list[Result]:
    results = on_both_backends(lambda backend, url: bench_backend(backend, url, sizes))
    if write:
        print(f"wrote {write_section('streaming', render(results, sizes))}")
    return results


def render(results: list[Result], sizes: Sizes) -> str:
    lines = [
        "## Streaming chat: what the server adds",
        "",
        f"Made by `make bench` (`python -m bench.streaming`) on {datetime.now(UTC):%Y-%m-%d}; "
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"sse-starlette {sse_starlette.__version__}, httpx {httpx.__version__}.",
        "",
        "The offline echo model answers at once, so the time to the first token is the server's "
        "own: the request, the agent cache, one transaction storing the user's message and the "
        "streaming reply (a durable commit), the prompt, the SSE framing. "
        f"{sizes.turns} turns with one client; the token rate is a reply of "
        f"{sizes.long_words:,} words on one connection ({sizes.long_turns} runs).",
        "",
        "| backend | first token, HTTP p50 / p99 (ms) | first token, in process p50 / p99 (ms) "
        "| tokens/s, one connection | per token (µs) |",
        "|---|---:|---:|---:|---:|",
    ]
    checks = []
    for r in results:
        http, local = r.first_token["HTTP (SSE)"], r.first_token["in process"]
        rate = statistics.median(r.tokens_per_s)
        lines.append(
            f"| {r.backend} | {p50(http):.2f} / {p99(http):.2f} | {p50(local):.2f} / "
            f"{p99(local):.2f} | {rate:,.0f} | {statistics.median(r.per_token_us):.0f} |"
        )
        checks += [
            (f"{r.backend}: first token < {TARGET_FIRST_TOKEN_MS:g} ms p50", p50(http)
             < TARGET_FIRST_TOKEN_MS, f"{p50(http):.2f} ms"),
            (f"{r.backend}: ≥ {TARGET_TOKENS_PER_S:,} tokens/s", rate >= TARGET_TOKENS_PER_S,
             f"{rate:,.0f}"),
        ]  # fmt: skip
    lines += ["", "| target | measured | met |", "|---|---:|---|"]
    lines += [f"| {t} | {m} | {'yes' if ok else '**no**'} |" for t, ok, m in checks]
    return "\n".join([*lines, ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes; do not write docs")
    args = parser.parse_args(argv)
    sizes = Sizes(turns=20, long_words=500, long_turns=2) if args.quick else Sizes()
    run(sizes, write=not args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
