"""The HTTP benchmarks' clients, run in client processes of their own (``bench.http``,
``bench.streaming``), so the server's process spends its CPU on serving alone and what is measured
is the server's cost, not the clients'.

The request/response clients of ``bench.http`` are lean: one keep-alive HTTP/1.1 connection per
client, requests written as bytes and responses parsed by httptools (the C parser uvicorn itself
uses). An httpx client spent about 1 ms of CPU per request here, as much as the server it
measured, on the same 2 cores; this one spends a small fraction of that, so the cores go to the
server. The streaming client stays on httpx (one client, its cost is not on the server's cores
at the same time as another request).

Only httptools, httpx and anyio are imported here: a client process does not load the store.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import anyio
import httptools
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


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection that carries one request at a time."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._body: list[bytes] = []
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._transport: asyncio.Transport | None = None

    @classmethod
    async def open(cls, base_url: str) -> Connection:
        url = urlsplit(base_url)
        host, port = url.hostname, url.port
        if host is None or port is None:
            raise ValueError(f"not a URL with a host and a port: {base_url}")
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(cls, host, port)
        return connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._parser.feed_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc or ConnectionError("the server closed the connection"))

    # httptools' callbacks
    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        body, self._body = b"".join(self._body), []
        assert self._waiter is not None
        self._waiter.set_result((self._parser.get_status_code(), body))

    async def request(self, method: str, path: str, body: object = None) -> tuple[int, bytes]:
        """The response's status and body."""
        assert self._transport is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: bench\r\n"
        data = b""
        if body is not None:
            data = json.dumps(body).encode()
            head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(head.encode() + b"\r\n" + data)
        return await self._waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


async def _run_job(job: Job) -> Timing:
    connections = {number: await Connection.open(job.base_url) for number in job.numbers}
    try:

        async def append(number: int, i: int) -> None:
            status, body = await connections[number].request(
                "POST",
                f"/api/v1/conversations/{job.targets[number]}/message",
                {"role": "user", "content": f"{i} {TEXT}", "metadata": {"i": i}},
            )
            assert status == 201, body

        async def last_50(number: int, i: int) -> None:
            status, body = await connections[number].request(
                "GET", f"/api/v1/conversations/{job.long}/messages?limit=50"
            )
            assert status == 200, body

        call = append if job.workload == "append" else last_50
        await _drive(job.numbers, 5, last_50, [])  # warm the connections and the server
        await anyio.sleep(max(0.0, job.start_at - time.time()))
        latencies: list[float] = []
        started, cpu = time.time(), time.process_time()
        await _drive(job.numbers, job.requests, call, latencies)
        return Timing(latencies, started, time.time(), time.process_time() - cpu)
    finally:
        for connection in connections.values():
            connection.close()


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
