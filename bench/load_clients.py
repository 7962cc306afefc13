"""The load benchmark's clients: each runs in a client process (``client_process``), picks
operations at random (weighted, reproducible) until the deadline, and tallies latencies and errors.
See ``bench.load``."""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field

import anyio
import httpx

TEXT = (
    "The quarterly report is attached; revenue grew in every region except the north, where a "
    "late shipment moved two large orders into the next quarter. Could you check the numbers in "
    "section three against the ledger and tell me whether the adjustment looks right to you? "
)
OPERATIONS = {  # name -> (Client method, weight)
    "append": ("append", 40),
    "last 50": ("last_50", 20),
    "page": ("page", 15),
    "stream": ("stream", 15),
    "abandoned stream": ("abandon", 10),
}


@dataclass
class Plan:
    """What the clients need: the server and the ids made before the run."""

    base: str
    deadline: float
    """``time.time()`` at which clients stop starting operations."""
    appends: list[str]
    chats: list[str]
    history: str


@dataclass
class Tally:
    """One client process's figures: per operation, latencies (ms) and errors."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    def merge(self, other: Tally) -> None:
        for op, values in other.latencies.items():
            self.latencies.setdefault(op, []).extend(values)
        for op, count in other.errors.items():
            self.errors[op] = self.errors.get(op, 0) + count
        self.examples += other.examples[: max(0, 5 - len(self.examples))]


def ready(_: int) -> None:
    """Nothing: mapped over the pool first, so the clients start once every process is up."""
    time.sleep(0.2)  # long enough that each process of the pool takes one


def client_process(plan: Plan, numbers: list[int]) -> Tally:
    """Run the clients ``numbers`` until the deadline; their merged tally."""
    return anyio.run(_clients, plan, numbers)


async def _clients(plan: Plan, numbers: list[int]) -> Tally:
    tally = Tally()
    async with anyio.create_task_group() as tg:
        for number in numbers:
            tg.start_soon(_client, plan, number, tally)
    return tally


async def _client(plan: Plan, number: int, tally: Tally) -> None:
    chooser = random.Random(number)
    names, weights = list(OPERATIONS), [weight for _, weight in OPERATIONS.values()]
    async with httpx.AsyncClient(base_url=plan.base, timeout=30, trust_env=False) as http:
        client = Client(http, plan, number)
        while time.time() < plan.deadline:
            op = chooser.choices(names, weights)[0]
            started = time.perf_counter()
            try:
                problem = await getattr(client, OPERATIONS[op][0])()
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if problem is None:
                tally.latencies.setdefault(op, []).append((time.perf_counter() - started) * 1000)
            else:
                tally.errors[op] = tally.errors.get(op, 0) + 1
                if len(tally.examples) < 5:
                    tally.examples.append(f"{op}: {problem}")


class Client:
    """One client's operations; each returns what went wrong, or ``None``."""

    def __init__(self, http: httpx.AsyncClient, plan: Plan, number: int) -> None:
        self.http = http
        self.history = f"/api/v1/conversations/{plan.history}/messages"
        self.append_to = f"/api/v1/conversations/{plan.appends[number]}/message"
        self.chat = plan.chats[number]
        self.cursor: str | None = None

    async def append(self) -> str | None:
        body = {"role": "user", "content": f"{uuid.uuid4()} {TEXT}"}
        return _expect(await self.http.post(self.append_to, json=body), 201)

    async def last_50(self) -> str | None:
        return _expect(await self.http.get(self.history, params={"limit": 50}), 200)

    async def page(self) -> str | None:
        params: dict[str, str | int] = {"limit": 50}
        if self.cursor is not None:
            params["before"] = self.cursor
        response = await self.http.get(self.history, params=params)
        if response.status_code == 200:
            self.cursor = response.json()["next_cursor"]  # None at the oldest: start again
        return _expect(response, 200)

    async def stream(self) -> str | None:
        return await self._turn(abandon=False)

    async def abandon(self) -> str | None:
        return await self._turn(abandon=True)

    async def _turn(self, *, abandon: bool) -> str | None:
        """A streamed turn, read to its end (or hung up on after its first event)."""
        body = {"conversation_id": self.chat, "content": " ".join(TEXT.split()[:30])}
        last = None
        async with self.http.stream("POST", "/api/v1/streaming/send", json=body) as response:
            if response.status_code != 200:
                await response.aread()
                return f"{response.status_code} {response.text}"
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    last = line.removeprefix("event:").strip()
                    if abandon:
                        return None  # leaving the block hangs up
        return None if last == "message_end" else f"the stream ended with {last!r}"


def _expect(response: httpx.Response, status: int) -> str | None:
    return None if response.status_code == status else f"{response.status_code} {response.text}"
