"""Memory in chat turns: what recall and capture add to a turn's time to its first token.

    python -m bench.chat_memory            # full run, writes the "chat memory" section
    python -m bench.chat_memory --quick    # small sizes, prints only

Through the chat runtime in process (no HTTP, whose cost is the same either way), with the
offline echo model (it answers at once) and history off, on SQLite and PostgreSQL. The store
holds :data:`USERS` users' memories, :data:`PER_USER` each (hash-384 embeddings of sentences such
as "The user's sister Maya likes jazz and lives in Porto"); the user of the measured turns is one
of them. Each turn asks about that user's life ("where does my sister live?"), and four runtimes
take turns in rotation, so that the machine's drift touches all of them alike:

- memory off (``memory_recall=0``, ``memory_capture=false``);
- capture only (each message kept as an episodic memory);
- recall only (the 5 best of the user's memories put into the prompt, access counted);
- recall and capture (the defaults).

Recall and capture happen in the worker-thread hop the turn already makes: the message is
embedded, searched for in a read unit, then the turn's transaction counts the accesses and stores
the message as a memory. What they add is the embedding, the searches, the access count and one
insert. Target: recall and capture add under 10 ms at the median.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio

import agentkeep
from agentkeep import AgentCreate, ConversationCreate, MemoryCreate, Settings
from agentkeep.managers.agents import AgentManager
from agentkeep.managers.chat import ChatRuntime, TurnInput
from bench.report import on_both_backends, write_section

TARGET_ADDED_MS = 10.0
USERS = 5
PER_USER = 1_000
USER = "user-0"
"""The user whose turns are measured."""

RELATIONS = [
    "sister",
    "brother",
    "mother",
    "father",
    "daughter",
    "son",
    "friend",
    "colleague",
    "neighbour",
    "cousin",
]
NAMES = [
    "Maya",
    "Leo",
    "Ines",
    "Omar",
    "Zoe",
    "Ivan",
    "Aiko",
    "Noor",
    "Luca",
    "Emma",
    "Tariq",
    "Sofia",
    "Ben",
    "Hana",
    "Raul",
    "Lena",
    "Kofi",
    "Mila",
    "Arjun",
    "Ada",
    "Felix",
    "Rosa",
    "Yuki",
    "Sam",
    "Nadia",
    "Pablo",
    "Greta",
    "Malik",
    "Iris",
    "Theo",
]
THINGS = [
    "jazz",
    "chess",
    "tennis",
    "sushi",
    "hiking",
    "opera",
    "cycling",
    "pottery",
    "sailing",
    "poetry",
    "running",
    "baking",
    "football",
    "painting",
    "gardening",
    "climbing",
    "coffee",
    "tea",
    "swimming",
    "photography",
    "origami",
    "skiing",
    "karaoke",
    "cricket",
    "knitting",
    "yoga",
    "astronomy",
    "archery",
    "fishing",
    "rowing",
]
CITIES = [
    "Porto",
    "Lyon",
    "Kyoto",
    "Oslo",
    "Lima",
    "Accra",
    "Pune",
    "Quito",
    "Cork",
    "Graz",
    "Riga",
    "Tunis",
    "Perth",
    "Dakar",
    "Split",
    "Bergen",
]
TEMPLATES = (
    "The user's {relation} {name} likes {thing} and lives in {city}",
    "The user met {name}, a {relation}, in {city} while doing {thing}",
    "The user wants to try {thing} with their {relation} {name}",
    "The user's {relation} moved to {city} last year",
    "The user does not like {thing}",
)
QUESTIONS = (
    "where does my {relation} live?",
    "what does {name} like doing?",
    "who did I meet in {city}?",
    "should I take up {thing}?",
    "what do you remember about my {relation} {name}?",
)


def sentence(rng: random.Random, templates: tuple[str, ...]) -> str:
    return rng.choice(templates).format(
        relation=rng.choice(RELATIONS),
        name=rng.choice(NAMES),
        thing=rng.choice(THINGS),
        city=rng.choice(CITIES),
    )


@dataclass
class Sizes:
    turns: int = 300
    per_user: int = PER_USER


@dataclass(frozen=True)
class Subject:
    label: str
    recall: int
    capture: bool


SUBJECTS = (
    Subject("memory off", 0, False),
    Subject("capture only", 0, True),
    Subject("recall only", 5, False),
    Subject("recall and capture (defaults)", 5, True),
)


@dataclass
class Result:
    backend: str
    first_token: dict[str, list[float]] = field(default_factory=dict)
    """subject label -> milliseconds from sending to the first token, per turn."""
    recalled: list[int] = field(default_factory=list)
    """Memories recalled per turn (recall only)."""


def setup(settings: Settings, sizes: Sizes) -> uuid.UUID:
    """The memories, an echo agent without history; the agent's id."""
    rng = random.Random(7)
    with agentkeep.connect_sync(settings) as db:
        for user in range(USERS):
            db.memory.remember_many(
                [
                    MemoryCreate(
                        content=sentence(rng, TEMPLATES),
                        user_id=f"user-{user}",
                        memory_type="fact",
                        importance=round(rng.random(), 2),
                    )
                    for _ in range(sizes.per_user)
                ]
            )
        agent = db.agents.create(AgentCreate(name="bench", provider="echo", include_history=False))
        return agent.id


async def measure(settings: Settings, agent_id: uuid.UUID, sizes: Sizes, result: Result) -> None:
    db = agentkeep.connect(settings, upgrade=False)
    try:
        runtimes: list[tuple[Subject, ChatRuntime, uuid.UUID]] = []
        for subject in SUBJECTS:
            own = settings.model_copy(
                update={"memory_recall": subject.recall, "memory_capture": subject.capture}
            )
            conversation = await db.conversations.create(
                ConversationCreate(agent_id=agent_id, user_id=USER)
            )
            runtime = ChatRuntime(db, AgentManager(db, own), own)
            runtimes.append((subject, runtime, conversation.id))
            result.first_token[subject.label] = []
        rng = random.Random(11)
        for turn in range(10 + sizes.turns):  # the first ten warm the code paths and caches
            question = sentence(rng, QUESTIONS)
            for subject, runtime, cid in runtimes:
                ms, end = await first_token(runtime, cid, question)
                if turn >= 10:
                    result.first_token[subject.label].append(ms)
                    if subject.recall and not subject.capture:
                        result.recalled.append(len(end.get("memories", [])))
    finally:
        await db.aclose()


async def first_token(
    runtime: ChatRuntime, cid: uuid.UUID, content: str
) -> tuple[float, dict[str, Any]]:
    sent = time.perf_counter()
    first: float | None = None
    end: dict[str, Any] = {}
    turn = await runtime.send(cid, TurnInput(content=content))
    async for event in turn.events():
        if event.event == "token" and first is None:
            first = time.perf_counter()
        elif event.event == "message_end":
            end = event.data
    assert first is not None
    return (first - sent) * 1000, end


def bench_backend(backend: str, database_url: str, sizes: Sizes) -> Result:
    print(f"{backend}:", flush=True)
    settings = Settings(database_url=database_url)
    agent_id = setup(settings, sizes)
    result = Result(backend)
    anyio.run(measure, settings, agent_id, sizes, result)
    off = p50(result.first_token[SUBJECTS[0].label])
    for label, values in result.first_token.items():
        print(
            f"  {label:<30} p50 {p50(values):6.2f} ms  p99 {p99(values):6.2f} ms  "
            f"added p50 {p50(values) - off:+6.2f} ms"
        )
    print(f"  memories recalled per turn: {statistics.mean(result.recalled):.1f}", flush=True)
    return result


def p50(values: list[float]) -> float:
    return statistics.median(values)


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) > 1 else values[0]


def run(sizes: Sizes, write: bool) -> list[Result]:
    results = on_both_backends(lambda backend, url: bench_backend(backend, url, sizes))
    if write:
        print(f"wrote {write_section('chat-memory', render(results, sizes))}")
    return results


def render(results: list[Result], sizes: Sizes) -> str:
    lines = [
        "## Memory in chat turns: what recall and capture add to the first token",
        "",
        f"Made by `python -m bench.chat_memory` on {datetime.now(UTC):%Y-%m-%d}; "
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}.",
        "",
        "Chat turns through the runtime in process with the offline echo model (history off); "
        f"the store holds {USERS} users' memories, {sizes.per_user:,} each, embedded by "
        "hash-384; the measured user is one of them and asks about their life. "
        f"{sizes.turns} turns per configuration, the configurations in rotation. Time from "
        "sending the message to the first token, in ms; *added* is the p50 over memory off.",
        "",
        "| backend | configuration | p50 | p99 | added p50 |",
        "|---|---|---:|---:|---:|",
    ]
    checks = []
    for r in results:
        off = p50(r.first_token[SUBJECTS[0].label])
        for label, values in r.first_token.items():
            lines.append(
                f"| {r.backend} | {label} | {p50(values):.2f} | {p99(values):.2f} "
                f"| {p50(values) - off:+.2f} |"
            )
        both = p50(r.first_token[SUBJECTS[-1].label]) - off
        checks.append(
            (
                f"{r.backend}: recall and capture add < {TARGET_ADDED_MS:g} ms p50",
                both < TARGET_ADDED_MS,
                f"{both:.2f} ms",
            )
        )
    lines += [
        "",
        "Memories recalled per turn (mean, min score 0.3): "
        + ", ".join(f"{r.backend} {statistics.mean(r.recalled):.1f}" for r in results)
        + ".",
        "",
        "| target | measured | met |",
        "|---|---:|---|",
    ]
    lines += [f"| {t} | {m} | {'yes' if ok else '**no**'} |" for t, ok, m in checks]
    return "\n".join([*lines, ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes; do not write docs")
    args = parser.parse_args(argv)
    sizes = Sizes(turns=20, per_user=200) if args.quick else Sizes()
    run(sizes, write=not args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
