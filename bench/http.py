"""HTTP benchmark: what serving the store over HTTP costs, as a ratio to the Python API.

    python -m bench.http            # full run, writes the "http" section of docs/benchmarks.md
    python -m bench.http --quick    # small sizes, prints only (a smoke run)

Two workloads, each with 16 concurrent clients, on SQLite (file, WAL, synchronous=FULL) and
PostgreSQL (embedded, unix socket, synchronous_commit on):

- append: every client appends ~300-character messages to its own conversation
  (``POST /api/v1/conversations/{id}/message``), each acknowledged after its commit;
- last-50: every client reads the last 50 messages of one 2,000-message conversation
  (``GET /api/v1/conversations/{id}/messages?limit=50``).

The server is the real thing (``agentkeep serve``: uvicorn running ``create_app``), measured with
one worker process and with two (``--workers 1,2``, the default; a 2-core machine runs two); the
clients are lean asyncio clients (keep-alive connections, responses
parsed by httptools) in client processes of their own (2 processes of 8 clients,
``bench.http_clients``), which start their timed requests together, so the
server's process does nothing but serve. The same workload then runs through the async Python API
(``agentkeep.connect()``, 16 tasks) in this process, so the HTTP overhead is a ratio measured in
the same run. Client processes and server share the machine's cores.

**The floor HTTP itself sets.** The same clients then run against the same uvicorn set-up (the
same worker counts, uvloop and httptools as uvicorn picks them for ``agentkeep serve``) serving a
bare FastAPI app that does no storage work (:func:`floor_app`): its append route reads the body
and answers 201 with the bytes of one real append's answer, its page route answers the bytes of
one real last-50 page, both captured from agentkeep's server in the same run (the same headers
too, the date and the server's name aside). Its rate is what the transport alone allows on this
machine; the difference between its server CPU per request and agentkeep's is agentkeep's share.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import anyio
import fastapi
import httptools
import httpx
import uvicorn

import agentkeep
from agentkeep import ConversationCreate, MessageCreate, Settings
from bench.http_clients import TEXT, WORKLOADS, Job, ready, run_job, summary
from bench.report import on_both_backends, write_section


@dataclass
class Sizes:
    clients: int = 16
    requests: int = 250
    """Per client, per workload."""
    history: int = 2_000
    processes: int = 2
    """Client processes the HTTP clients are spread over."""
    workers: tuple[int, ...] = (1, 2)
    """The server's worker process counts to measure, one server each."""


@dataclass
class Run:
    """One workload through one subject: throughput and latency percentiles (ms)."""

    rate: float
    p50: float
    p99: float
    cpu_ms: float = 0.0
    """The server's CPU per request (HTTP: its processes; Python API: this process), ms."""
    client_cpu_ms: float = 0.0
    """HTTP only: the client processes' CPU per request, ms."""


@dataclass
class Result:
    backend: str
    runs: dict[tuple[str, str], Run] = field(default_factory=dict)
    """(workload, subject) -> Run; subject is "HTTP, N worker(s)", "HTTP floor …, N worker(s)"
    or "Python API"."""


Call = Callable[[int, int], Awaitable[None]]


async def drive(clients: int, requests: int, call: Call) -> Run:
    """``clients`` tasks each making ``requests`` calls of ``call(client, i)``, timed."""
    latencies: list[float] = []

    async def client(number: int) -> None:
        for i in range(requests):
            started = time.perf_counter()
            await call(number, i)
            latencies.append((time.perf_counter() - started) * 1000)

    started, cpu = time.perf_counter(), time.process_time()
    async with anyio.create_task_group() as tg:
        for number in range(clients):
            tg.start_soon(client, number)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    cuts = statistics.quantiles(latencies, n=100)
    n = len(latencies)
    return Run(n / elapsed, statistics.median(latencies), cuts[98], cpu / n * 1000)


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


def server_cpu(pid: int) -> float:
    """CPU seconds used so far by the server process and its workers (Linux ``/proc``; 0 where
    there is none)."""
    total = 0.0
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            total += server_cpu(int(child))
    return total


def over_http(
    base_url: str, server_pid: int, sizes: Sizes, targets: list[uuid.UUID], long: uuid.UUID
) -> dict[str, Run]:
    """Each workload from ``sizes.processes`` client processes at once."""
    groups = [list(range(sizes.clients))[p :: sizes.processes] for p in range(sizes.processes)]
    groups = [g for g in groups if g]
    runs = {}
    with multiprocessing.get_context("spawn").Pool(len(groups)) as pool:
        pool.map(ready, range(len(groups)), chunksize=1)  # started and imported
        for workload in WORKLOADS:
            start_at = time.time() + 1.0  # after every process has warmed its connections
            jobs = [
                Job(base_url, workload, g, sizes.requests, [str(t) for t in targets], str(long),
                    start_at)
                for g in groups
            ]  # fmt: skip
            cpu = server_cpu(server_pid)
            timings = pool.map(run_job, jobs, chunksize=1)
            cpu = server_cpu(server_pid) - cpu  # the warm-up requests too: a little over
            latencies = [ms for t in timings for ms in t.latencies]
            elapsed = max(t.ended for t in timings) - min(t.started for t in timings)
            p50, p99 = summary(latencies)
            n = len(latencies)
            runs[workload] = Run(n / elapsed, p50, p99, cpu / n * 1000,
                                 sum(t.cpu for t in timings) / n * 1000)  # fmt: skip
    return runs


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
def server(database_url: str, workers: int = 1) -> Iterator[tuple[str, int]]:
    """``agentkeep serve`` in its own process(es); yields its base URL and process id."""
    port = free_port()
    env = {**os.environ, "AGENTKEEP_DATABASE_URL": database_url, "AGENTKEEP_AUTO_MIGRATE": "false",
           "AGENTKEEP_LOG_LEVEL": "WARNING"}  # fmt: skip
    command = [
        sys.executable, "-m", "agentkeep", "serve", "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers),
    ]  # fmt: skip
    with serving(command, env, port) as served:
        yield served


FLOOR_ANSWERS = "AGENTKEEP_BENCH_FLOOR_ANSWERS"
"""The environment variable naming the folder with the floor's answers (``append.json``,
``page.json``)."""
ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def floor_server(answers: Path, workers: int = 1) -> Iterator[tuple[str, int]]:
    """:func:`floor_app` under uvicorn as ``agentkeep serve`` runs it (the same worker count,
    event loop, HTTP parser, log level, no access log); yields its base URL and process id."""
    port = free_port()
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, FLOOR_ANSWERS: str(answers), "PYTHONPATH": path}
    command = [
        sys.executable, "-m", "uvicorn", "bench.http:floor_app", "--factory", "--host",
        "127.0.0.1", "--port", str(port), "--workers", str(workers), "--log-level", "warning",
        "--no-access-log",
    ]  # fmt: skip
    with serving(command, env, port) as served:
        yield served


@contextmanager
def serving(command: list[str], env: dict[str, str], port: int) -> Iterator[tuple[str, int]]:
    """``command`` (a server on ``port``) until it answers ``/health``; its base URL and
    process id."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
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
        yield base_url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def floor_app() -> fastapi.FastAPI:
    """The floor: FastAPI serving the two benchmarked routes with fixed answers and no store
    (the answers are read once, from the folder :data:`FLOOR_ANSWERS` names)."""
    folder = Path(os.environ[FLOOR_ANSWERS])
    appended, page = (folder / "append.json").read_bytes(), (folder / "page.json").read_bytes()
    headers = {"X-Content-Type-Options": "nosniff"}  # as agentkeep's API answers carry it
    app = fastapi.FastAPI()

    @app.post("/api/v1/conversations/{conversation_id}/message")
    async def append(conversation_id: str, request: fastapi.Request) -> fastapi.Response:
        await request.body()
        return fastapi.Response(appended, 201, headers, "application/json")

    @app.get("/api/v1/conversations/{conversation_id}/messages")
    async def last(conversation_id: str, limit: int = 50) -> fastapi.Response:
        return fastapi.Response(page, 200, headers, "application/json")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def capture(base_url: str, target: uuid.UUID, long: uuid.UUID, folder: Path) -> Path:
    """One real append's answer and one real last-50 page, as the floor will answer them."""
    with httpx.Client(base_url=base_url, trust_env=False) as client:
        appended = client.post(
            f"/api/v1/conversations/{target}/message",
            json={"role": "user", "content": f"0 {TEXT}", "metadata": {"i": 0}},
        )
        page = client.get(f"/api/v1/conversations/{long}/messages", params={"limit": 50})
    for response in (appended, page):
        response.raise_for_status()
    (folder / "append.json").write_bytes(appended.content)
    (folder / "page.json").write_bytes(page.content)
    return folder


def bench_backend(backend: str, database_url: str, sizes: Sizes) -> Result:
    print(f"{backend}:", flush=True)
    settings = Settings(database_url=database_url)
    agentkeep.connect_sync(settings).close()  # migrate
    targets, long = prepare(settings, sizes)
    result = Result(backend)
    subjects: list[tuple[str, dict[str, Run]]] = []
    with tempfile.TemporaryDirectory(prefix="akfloor") as folder:
        answers: Path | None = None
        for workers in sizes.workers:
            with server(database_url, workers) as (base_url, pid):
                if answers is None:
                    answers = capture(base_url, targets[0], long, Path(folder))
                runs = over_http(base_url, pid, sizes, targets, long)
            subjects.append((http_subject(workers), runs))
        assert answers is not None
        for workers in sizes.workers:
            with floor_server(answers, workers) as (base_url, pid):
                runs = over_http(base_url, pid, sizes, targets, long)
            subjects.append((floor_subject(workers), runs))
    subjects.append((PYTHON, anyio.run(over_python, settings, sizes, targets, long)))
    for workload in WORKLOADS:
        for subject, runs in subjects:
            run = runs[workload]
            result.runs[(workload, subject)] = run
            print(
                f"  {workload:<8} {subject:<52} {run.rate:>9,.0f}/s  "
                f"p50 {run.p50:6.2f} ms  p99 {run.p99:7.2f} ms  "
                f"server CPU {run.cpu_ms:.3f} ms/req"
                + (f", clients' {run.client_cpu_ms:.2f}" if subject != PYTHON else ""),
                flush=True,
            )
    return result


PYTHON = "Python API"


FLOOR = "HTTP floor: uvicorn + FastAPI, no store"


def _workers(workers: int) -> str:
    return f"{workers} worker" + ("s" if workers > 1 else "")


def http_subject(workers: int) -> str:
    return f"HTTP, {_workers(workers)}"


def floor_subject(workers: int) -> str:
    return f"{FLOOR}, {_workers(workers)}"


def agentkeep_share(result: Result, workload: str, workers: int) -> float | None:
    """The share of the server's CPU per request that is agentkeep's: what it spends over the
    floor with the same workers, as a fraction of what it spends (``None`` without both)."""
    http = result.runs.get((workload, http_subject(workers)))
    floor = result.runs.get((workload, floor_subject(workers)))
    if http is None or floor is None or http.cpu_ms <= 0:
        return None
    return (http.cpu_ms - floor.cpu_ms) / http.cpu_ms


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
        f"FastAPI {fastapi.__version__}, uvicorn {uvicorn.__version__}, "
        f"httptools {httptools.__version__}.",
        "",
        f"{sizes.clients} concurrent clients, {sizes.requests} requests each per workload. The "
        f"server (`agentkeep serve --workers N`) runs in its own process(es), the clients "
        f"(keep-alive connections, responses parsed by httptools) in {sizes.processes} client "
        f"processes; all share the same {os.cpu_count()} cores. The Python API runs the same "
        "calls from the same number of tasks in one process, without HTTP. CPU per request is "
        "the server's processes' (for the Python API: its process's) and the client processes'.",
        "",
        f"**{FLOOR}** is the floor HTTP itself sets here: the same uvicorn set-up (worker "
        "count, uvloop, httptools) and the same clients, serving a bare FastAPI app whose two "
        "routes (plain FastAPI routes, a path and a query parameter each) do no storage work "
        "and answer the bytes of a real append's answer and of a real last-50 page, captured "
        "from agentkeep's server in the same run. agentkeep's share of "
        "the server's CPU per request is what its server spends over the floor with the same "
        "workers, as a fraction of what it spends.",
        "",
    ]
    for result in results:
        lines += [
            f"### {result.backend}",
            "",
            "| workload | subject | requests/s | p50 (ms) | p99 (ms) | server CPU (ms/request) "
            "| clients' CPU (ms/request) | HTTP / Python API | agentkeep's share of server CPU |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for workload in WORKLOADS:
            python = result.runs[(workload, PYTHON)]
            for subject, workers in [
                *((http_subject(n), n) for n in sizes.workers),
                *((floor_subject(n), n) for n in sizes.workers),
                (PYTHON, 0),
            ]:
                run = result.runs[(workload, subject)]
                http = subject != PYTHON
                ratio = f"{run.rate / python.rate:.2f} of the rate" if http else ""
                clients = f"{run.client_cpu_ms:.2f}" if http else ""
                share = agentkeep_share(result, workload, workers)
                ours = f"{share:.0%}" if share is not None and subject.startswith("HTTP,") else ""
                lines.append(
                    f"| {workload} | {subject} | {run.rate:,.0f} | {run.p50:.2f} | "
                    f"{run.p99:.2f} | {run.cpu_ms:.2f} | {clients} | {ratio} | {ours} |"
                )
        lines += ["", *summary_lines(result, sizes), ""]
    return "\n".join(lines)


def summary_lines(result: Result, sizes: Sizes) -> list[str]:
    """Per workload and worker count: the floor's rate, agentkeep's over HTTP, the Python
    API's, and agentkeep's share of the server's CPU per request."""
    lines = []
    for workload in WORKLOADS:
        python = result.runs[(workload, PYTHON)]
        for workers in sizes.workers:
            http = result.runs[(workload, http_subject(workers))]
            floor = result.runs[(workload, floor_subject(workers))]
            share = agentkeep_share(result, workload, workers) or 0.0
            ours = http.cpu_ms - floor.cpu_ms
            lines.append(
                f"- {workload}, {_workers(workers)}: the floor answers {floor.rate:,.0f}/s, "
                f"agentkeep over HTTP {http.rate:,.0f}/s, the Python API {python.rate:,.0f}/s; "
                f"of the server's {http.cpu_ms:.2f} ms of CPU per request, {ours:.2f} ms "
                f"({share:.0%}) is agentkeep's and {floor.cpu_ms:.2f} ms the floor's; of "
                f"agentkeep's, the same call through the Python API takes {python.cpu_ms:.2f} ms, "
                f"its HTTP layer (matching the route, checking the request, encoding the answer) "
                f"the other {ours - python.cpu_ms:.2f} ms."
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes; do not write docs")
    parser.add_argument(
        "--workers", default="1,2", help="server worker process counts, comma-separated"
    )
    args = parser.parse_args(argv)
    sizes = Sizes(clients=4, requests=20, history=100) if args.quick else Sizes()
    sizes.workers = tuple(int(n) for n in args.workers.split(","))
    run(sizes, write=not args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
