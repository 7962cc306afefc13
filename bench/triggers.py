"""Module triggers: what choosing a turn's modules costs, and how a runaway pattern is stopped.

    python -m bench.triggers          # full run: the "triggers" section of docs/benchmarks.md
    python -m bench.triggers --quick  # fewer rounds, prints only (a smoke run)

Three measurements, in this process:

- a normal trigger (``(?i)refund|money back``) on a 240-character message: the engine's search
  alone, the standard library's ``re`` for comparison, and a whole :func:`triggered` call (its
  hop to a worker thread included) for one and for ten modules;
- a runaway trigger (``(a|a)+$`` on 31 characters, which the standard library would search for
  hours): the wall time until :func:`triggered` gives the module up, at the default limit, and
  how often the event loop ran another task meanwhile (every 10 ms if it never stalled);
- ``(a+)+$``, the usual example, on 23 characters: the standard library's time (it doubles per
  character) against the engine's.
"""

from __future__ import annotations

import argparse
import platform
import re
import statistics
import time
import uuid
from datetime import UTC, datetime

import anyio
import regex

from agentkeep.managers import prompt
from agentkeep.models.config import Module
from agentkeep.models.enums import ExecutionContext
from bench.report import write_section

NORMAL = "(?i)refund|money back"
MESSAGE = "Hello, I would like to ask about my order and maybe get my money back, thanks " * 3
RUNAWAY = "(a|a)+$"


def module(pattern: str) -> Module:
    now = datetime.now(UTC)
    return Module(
        id=uuid.uuid4(), name=f"m-{uuid.uuid4().hex[:6]}", type="t", trigger_pattern=pattern,
        execution_context=ExecutionContext.IMMEDIATE, created_at=now, updated_at=now,
    )  # fmt: skip


def per_call_us(call: object, rounds: int) -> float:
    assert callable(call)
    call()
    began = time.perf_counter()
    for _ in range(rounds):
        call()
    return (time.perf_counter() - began) / rounds * 1e6


async def triggered_us(modules: list[Module], rounds: int) -> float:
    await prompt.triggered(modules, MESSAGE)
    began = time.perf_counter()
    for _ in range(rounds):
        await prompt.triggered(modules, MESSAGE)
    return (time.perf_counter() - began) / rounds * 1e6


async def runaway() -> tuple[float, int]:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.01)
            ticks += 1

    async with anyio.create_task_group() as group:
        group.start_soon(tick)
        began = time.perf_counter()
        chosen = await prompt.triggered([module(RUNAWAY)], "a" * 30 + "!")
        elapsed = time.perf_counter() - began
        group.cancel_scope.cancel()
    assert [f.code for f in chosen.failures] == ["trigger_timeout"]
    return elapsed, ticks


def cell(pattern: str) -> str:
    """``pattern`` as it can stand in a Markdown table cell."""
    return pattern.replace("|", "\\|")


async def main(quick: bool) -> str:
    rounds = 2_000 if quick else 20_000
    compiled = regex.compile(NORMAL)
    engine = per_call_us(lambda: compiled.search(MESSAGE, timeout=prompt.TRIGGER_TIMEOUT), rounds)
    stdlib = per_call_us(lambda: re.search(NORMAL, MESSAGE), rounds)
    one = await triggered_us([module(NORMAL)], rounds // 10)
    ten = await triggered_us([module(NORMAL) for _ in range(10)], rounds // 10)
    stops = [await runaway() for _ in range(2 if quick else 5)]
    began = time.perf_counter()
    re.search("(a+)+$", "a" * 22 + "!")
    nested_re = (time.perf_counter() - began) * 1000
    began = time.perf_counter()
    regex.search("(a+)+$", "a" * 22 + "!", timeout=1)
    nested_regex = (time.perf_counter() - began) * 1000
    wall = statistics.median(s for s, _ in stops)
    ticks = min(t for _, t in stops)
    return f"""## Module triggers: cost of a normal one, and how a runaway one is stopped

`python -m bench.triggers` on Python {platform.python_version()}, {datetime.now(UTC):%Y-%m-%d}, in
one process; limit `TRIGGER_TIMEOUT` = {prompt.TRIGGER_TIMEOUT} s of CPU time per pattern.

| what | time |
| --- | --- |
| `{cell(NORMAL)}` on {len(MESSAGE)} characters, the `regex` engine's search | {engine:.1f} µs |
| the same with the standard library's `re` | {stdlib:.1f} µs |
| `triggered()` for 1 module (worker-thread hop included) | {one:.0f} µs |
| `triggered()` for 10 modules (one hop) | {ten:.0f} µs |
| `{cell(RUNAWAY)}` on 31 characters: until its module is left out \
(median of {len(stops)}) | {wall * 1000:.0f} ms |
| event-loop ticks meanwhile (every 10 ms; fewest of the runs) | {ticks} |
| `(a+)+$` on 23 characters, standard library `re` | {nested_re:.0f} ms |
| `(a+)+$` on 23 characters, `regex` | {nested_regex:.2f} ms |
"""


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds; print only")
    args = parser.parse_args()
    text = anyio.run(main, args.quick)
    print(text)
    if not args.quick:
        print(f"written to {write_section('triggers', text)}")
