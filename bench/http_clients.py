"""The HTTP benchmarks' clients, run in client processes of their own (``bench.http``,
``bench.streaming``), so the server's process spends its CPU on serving alone and what is measured
is the server's cost, not the clients'.

Only httpx and anyio are imported here: a client process does not load the store.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio
import httpx

TEXT = (
    "The quarterly report is attached; revenue grew in every region except the north, where a "
    "late shipment moved two large orders into the next quarter. Could you check the numbers in "
    "section three against the ledger and tell me whether the adjustment looks right to you? "
)
WORKLOADS = ("append", "last 50")


@dataclass
class Job:
    """What one client process does: ``clients`` concurrent clients, ``requests`` each."""

    base_url: str
    workload: str
    """One of :data:`WORKLOADS`."""
    numbers: list[int]
    """The clients' numbers (client ``n`` appends to ``targets[n]``)."""
    requests: int
    targets: list[str]
    long: str
    start_at: float
    """``time.time()`` at which every process starts its timed requests together."""


@dataclass
class Timing:
    """One process's figures: latencies (ms) and when its timed requests began and ended."""

    latencies: list[float]
    started: float
    ended: float
    cpu: float
    """CPU seconds this client process spent on its timed requests."""


def ready(_: int) -> None:
    """Nothing: mapped over the pool first, so each process is up and imported before timing."""
    time.sleep(0.2)  # long enough that each process of the pool takes one


def run_job(job: Job) -> Timing:
    return anyio.run(_run_job, job)


async def _run_job(job: Job) -> Timing:
    limits = httpx.Limits(
        max_connections=len(job.numbers), max_keepalive_connections=len(job.numbers)
    )
    async with httpx.AsyncClient(
        base_url=job.base_url, limits=limits, timeout=30, trust_env=False
    ) as client:

        async def append(number: int, i: int) -> None:
            response = await client.post(
                f"/api/v1/conversations/{job.targets[number]}/message",
                json={"role": "user", "content": f"{i} {TEXT}", "metadata": {"i": i}},
            )
            assert response.status_code == 201, response.text

        async def last_50(number: int, i: int) -> None:
            response = await client.get(
                f"/api/v1/conversations/{job.long}/messages", params={"limit": 50}
            )
            assert response.status_code == 200, response.text

        call = append if job.workload == "append" else last_50
        await _drive(job.numbers, 5, last_50, [])  # open the connections, warm the server
        await anyio.sleep(max(0.0, job.start_at - time.time()))
        latencies: list[float] = []
        started, cpu = time.time(), time.process_time()
        await _drive(job.numbers, job.requests, call, latencies)
        return Timing(latencies, started, time.time(), time.process_time() - cpu)


async def _drive(
    numbers: list[int],
    requests: int,
    call: Callable[[int, int], Awaitable[None]],
    latencies: list[float],
) -> None:
    async def one(number: int) -> None:
        for i in range(requests):
            began = time.perf_counter()
            await call(number, i)
            latencies.append((time.perf_counter() - began) * 1000)

    async with anyio.create_task_group() as tg:
        for number in numbers:
            tg.start_soon(one, number)


# --- streaming: one client, first token and token rate ---------------------------------------


@dataclass
class StreamJob:
    base_url: str
    conversation_id: str
    turns: int
    long_words: int
    long_turns: int


@dataclass
class StreamTiming:
    first_token_ms: list[float] = field(default_factory=list)
    tokens_per_s: list[float] = field(default_factory=list)
    per_token_us: list[float] = field(default_factory=list)


def run_stream_job(job: StreamJob) -> StreamTiming:
    return anyio.run(_run_stream_job, job)


async def _run_stream_job(job: StreamJob) -> StreamTiming:
    timing = StreamTiming()
    async with httpx.AsyncClient(base_url=job.base_url, timeout=60, trust_env=False) as client:

        async def turn(content: str) -> tuple[float, list[float]]:
            sent = time.perf_counter()
            arrivals: list[float] = []
            body = {"conversation_id": job.conversation_id, "content": content}
            async with client.stream("POST", "/api/v1/streaming/send", json=body) as response:
                assert response.status_code == 200, await response.aread()
                async for line in response.aiter_lines():
                    if line == "event: token":
                        arrivals.append(time.perf_counter())
            return sent, arrivals

        for _ in range(10):  # warm: the connection, the agent cache, the server's code paths
            await turn("warm up")
        for i in range(job.turns):
            sent, arrivals = await turn(f"message {i} about the quarterly numbers")
            timing.first_token_ms.append((arrivals[0] - sent) * 1000)
        words = " ".join(f"w{i}" for i in range(job.long_words))
        for _ in range(job.long_turns):
            _, arrivals = await turn(words)
            span = arrivals[-1] - arrivals[0]
            timing.tokens_per_s.append((len(arrivals) - 1) / span)
            timing.per_token_us.append(span / (len(arrivals) - 1) * 1e6)
    return timing


def summary(latencies: list[float]) -> tuple[float, float]:
    """p50 and p99 of ``latencies``."""
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [latencies[0]] * 99
    return statistics.median(latencies), cuts[98]
