"""Who runs, where, and which workloads: the comparison's subjects.

The raw driver runs at every durability an anchor uses on SQLite (ADK and LangChain keep
pysqlite's default rollback journal with ``synchronous=FULL``; LangGraph turns WAL on and keeps
FULL), plus WAL with NORMAL as the reference for what the fsync costs. agentkeep always runs in
WAL; its default ``synchronous=FULL`` is as durable as the rollback journal with FULL (every
acknowledged commit is on disk), and it also runs at NORMAL next to the raw driver at NORMAL. On
PostgreSQL every subject commits with the server's ``synchronous_commit=on``.

agentkeep's sync and async APIs and the raw driver share one database per backend and run: each
appends to its own conversations, and all read and grow the same conversations, filled once
(agentkeep's schema takes ~20 s to fill to 100,000 messages here; doing it once keeps the whole
benchmark within its time budget). Their order alternates between runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SQLITE = "sqlite"
POSTGRES = "postgres"
BOTH = (SQLITE, POSTGRES)
FULL = ("w1", "reads", "growth")


@dataclass(frozen=True)
class Plan:
    key: str
    module: str
    anchor: bool
    backends: tuple[str, ...]
    workloads: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)
    shared: str = ""
    """Plans with the same tag run in one process on one database (same schema, same data)."""

    @property
    def group(self) -> str:
        if self.anchor:
            return "anchor"
        return "raw" if self.key.startswith("raw") else "agentkeep"


RAW = "bench.compare.raw"
AGENTKEEP = "bench.compare.agentkeep_runner"

WAL_FULL = {"journal": "WAL", "synchronous": "FULL"}
ANCHORS = "bench.compare.anchors."

PLANS = [
    Plan("raw", RAW, False, BOTH, (*FULL, "w1c"), WAL_FULL, shared="ak"),
    Plan("raw-delete-full", RAW, False, (SQLITE,), ("w1",), {**WAL_FULL, "journal": "DELETE"}),
    Plan("raw-wal-normal", RAW, False, (SQLITE,), ("w1",), {**WAL_FULL, "synchronous": "NORMAL"}),
    Plan("agentkeep-sync", AGENTKEEP, False, BOTH, (*FULL, "w1c"), {"api": "sync"}, shared="ak"),
    Plan("agentkeep-async", AGENTKEEP, False, BOTH, (*FULL, "w1c"), {"api": "async"}, shared="ak"),
    Plan(
        "agentkeep-sync-normal",
        AGENTKEEP,
        False,
        (SQLITE,),
        ("w1",),
        {"api": "sync", "synchronous": "NORMAL"},
    ),
    Plan("adk", ANCHORS + "adk", True, BOTH, FULL),
    Plan("langchain-sql", ANCHORS + "langchain_sql", True, BOTH, FULL),
    Plan("langchain-postgres", ANCHORS + "langchain_postgres", True, (POSTGRES,), FULL),
    Plan("langgraph", ANCHORS + "langgraph", True, BOTH, FULL),
]
