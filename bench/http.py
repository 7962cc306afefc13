"""HTTP benchmark: what serving the store over HTTP costs, as a ratio to the Python API.

    python -m bench.http            # full run, writes the "http" section of docs/benchmarks.md
    python -m bench.http --quick    # small sizes, prints only (a smoke run)

Two workloads, each with 16 concurrent clients, on SQLite (file, WAL, synchronous=FULL) and
PostgreSQL (embedded, unix socket, synchronous_commit on):

- append: every client appends ~300-character messages to its own conversation
  (``POST /api/v1/conversations/{id}/message``), each acknowledged after its commit;
- last-50: every client reads the last 50 messages of one 2,000-message conversation
  (``GET /api/v1/conversations/{id}/messages?limit=50``).

The server is the real thing (``uvicorn`` running ``create_app`` in its own process, one worker);
the clients are ``httpx`` tasks in this process, on the same 2 cores. The same workload then runs
through the async Python API (``agentkeep.connect()``, 16 tasks) in this process, so the HTTP
overhead is a ratio measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio
import fastapi
import httpx
import uvicorn

import agentkeep
from agentkeep import ConversationCreate, MessageCreate, Settings
from bench.report import on_both_backends, write_section

TEXT = (
    "The quarterly report is attached; revenue grew in every region except the north, where a "
    "late shipment moved two large orders into the next quarter. Could you check the numbers in "
    "section three against the ledger and tell me whether the adjustment looks right to you? "
)


@dataclass
class Sizes:
    clients: int = 16
    requests: int = 250
    """Per client, per workload."""
    history: int = 2_000


@dataclass
class Run:
    """One workload through one subject: throughput and latency percentiles (ms)."""

    rate: float
    p50: float
    p99: float


@dataclass
class Result:
    backend: str
    runs: dict[tuple[str, str], Run] = field(default_factory=dict)
    """(workload, subject) -> Run; subject is "HTTP" or "Python API"."""


Call = Callable[[int, int], Awaitable[None]]


async def drive(clients: int, requests: int, call: Call) -> Run:
    """``clients`` tasks each making ``requests`` calls of ``call(client, i)``, timed."""
    latencies: list[float] = []

    async def client(number: int) -> None:
        for i in range(requests):
            started = time.perf_counter()
            await call(number, i)
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for number in range(clients):
            tg.start_soon(client, number)
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return Run(rate=len(latencies) / elapsed, p50=statistics.median(latencies), p99=cuts[98])


def prepare(settings: Settings, sizes: Sizes) -> tuple[list[uuid.UUID], uuid.UUID]:
    """Conversations to append to (one per client) and one long one to read."""
    with agentkeep.connect_sync(settings) as db:
        targets = [
            db.conversations.create(ConversationCreate(user_id=f"client-{n}")).id
            for n in range(sizes.clients)
        ]
        long = db.conversations.create(ConversationCreate(user_id="reader")).id
        for i in range(sizes.history):
            db.messages.append(long, MessageCreate(role="user", content=f"{i} {TEXT}"))
    return targets, long


async def over_http(
    base_url: str, sizes: Sizes, targets: list[uuid.UUID], long: uuid.UUID
) -> dict[str, Run]:
    limits = httpx.Limits(max_connections=sizes.clients, max_keepalive_connections=sizes.clients)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:

        async def append(number: int, i: int) -> None:
            response = await client.post(
                f"/api/v1/conversations/{targets[number]}/message",
                json={"role": "user", "content": f"{i} {TEXT}", "metadata": {"i": i}},
            )
            assert response.status_code == 201, response.text

        async def last_50(number: int, i: int) -> None:
            response = await client.get(
                f"/api/v1/conversations/{long}/messages", params={"limit": 50}
            )
            assert response.status_code == 200, response.text

        await drive(sizes.clients, 5, last_50)  # open the connections, warm the server
        return {
            "append": await drive(sizes.clients, sizes.requests, append),
            "last 50": await drive(sizes.clients, sizes.requests, last_50),
        }


async def over_python(
    settings: Settings, sizes: Sizes, targets: list[uuid.UUID], long: uuid.UUID
) -> dict[str, Run]:
    db = agentkeep.connect(settings, upgrade=False)
    try:

        async def append(number: int, i: int) -> None:
            await db.messages.append(
                targets[number],
                MessageCreate(role="user", content=f"{i} {TEXT}", metadata={"i": i}),
            )

        async def last_50(number: int, i: int) -> None:
            await db.messages.last(long, 50)

        await drive(sizes.clients, 5, last_50)
        return {
            "append": await drive(sizes.clients, sizes.requests, append),
            "last 50": await drive(sizes.clients, sizes.requests, last_50),
        }
    finally:
        await db.aclose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def server(database_url: str) -> Iterator[str]:
    """``create_app`` under uvicorn in its own process; yields its base URL."""
    port = free_port()
    env = {**os.environ, "AGENTKEEP_DATABASE_URL": database_url, "AGENTKEEP_AUTO_MIGRATE": "false"}
    command = [
        sys.executable, "-m", "uvicorn", "agentkeep.api.app:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=30)


def bench_backend(backend: str, database_url: str, sizes: Sizes) -> Result:
    print(f"{backend}:", flush=True)
    settings = Settings(database_url=database_url)
    agentkeep.connect_sync(settings).close()  # migrate
    targets, long = prepare(settings, sizes)
    result = Result(backend)
    with server(database_url) as base_url:
        http = anyio.run(over_http, base_url, sizes, targets, long)
    python = anyio.run(over_python, settings, sizes, targets, long)
    for workload in ("append", "last 50"):
        for subject, runs in (("HTTP", http), ("Python API", python)):
            run = runs[workload]
            result.runs[(workload, subject)] = run
            print(
                f"  {workload:<8} {subject:<10} {run.rate:>9,.0f}/s  "
                f"p50 {run.p50:6.2f} ms  p99 {run.p99:7.2f} ms",
                flush=True,
            )
    return result


def run(sizes: Sizes, write: bool) -> list[Result]:
    results = on_both_backends(lambda backend, url: bench_backend(backend, url, sizes))
    if write:
        print(f"wrote {write_section('http', render(results, sizes))}")
    return results


def render(results: list[Result], sizes: Sizes) -> str:
    lines = [
        "## The HTTP API: its cost over the Python API",
        "",
        f"Made by `make bench` (`python -m bench.http`) on {datetime.now(UTC):%Y-%m-%d}; "
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"FastAPI {fastapi.__version__}, uvicorn {uvicorn.__version__}, httpx {httpx.__version__}.",
        "",
        f"{sizes.clients} concurrent clients, {sizes.requests} requests each per workload. The "
        "server (uvicorn, one worker) and the clients (httpx, in one process) share the same "
        "2 cores, so the HTTP numbers include the clients' own cost. The Python API runs the "
        "same calls from the same number of tasks in one process, without HTTP.",
        "",
    ]
    for result in results:
        lines += [
            f"### {result.backend}",
            "",
            "| workload | subject | requests/s | p50 (ms) | p99 (ms) | HTTP / Python API |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for workload in ("append", "last 50"):
            http = result.runs[(workload, "HTTP")]
            python = result.runs[(workload, "Python API")]
            for subject, run in (("HTTP", http), ("Python API", python)):
                ratio = f"{http.rate / python.rate:.2f} of the rate" if subject == "HTTP" else ""
                lines.append(
                    f"| {workload} | {subject} | {run.rate:,.0f} | {run.p50:.2f} | "
                    f"{run.p99:.2f} | {ratio} |"
                )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes; do not write docs")
    args = parser.parse_args(argv)
    sizes = Sizes(clients=4, requests=20, history=100) if args.quick else Sizes()
    run(sizes, write=not args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
