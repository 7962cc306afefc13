"""LangGraph checkpoint benchmark: LangGraph's own ``SqliteSaver`` against ``AgentkeepSaver`` on a
SQLite file, through LangGraph's API, on the same workload.

    python -m bench.langgraph            # 200 turns, prints the table
    python -m bench.langgraph --quick    # 20 turns (a smoke run)

Workload: one thread of a chat graph (``messages`` with ``add_messages``, no model: a node that
echoes), one user message per turn, so the messages channel grows by two messages a turn and a
turn writes two checkpoints. Measured: the time of each ``put`` (the saver's own call, timed
inside it), and the database's size (file + WAL, after a checkpoint of the WAL) per turn, early
and late. Both savers write to a SQLite file in WAL mode; SqliteSaver with its defaults,
agentkeep with its own (``synchronous=FULL``, as agentkeep's settings default to).
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

HEADING = "## LangGraph checkpoints: SqliteSaver vs AgentkeepSaver (`python -m bench.langgraph`)"
INTRO = (
    "One thread of a chat graph (`messages` with `add_messages`, an echo node, no model), two "
    "checkpoints a turn, both savers on a SQLite file in WAL mode with `synchronous=FULL`. A put "
    "is timed inside the saver's own call; storage is the file and its WAL after a checkpoint."
)


def _ratios_note() -> str:
    return (
        "SqliteSaver stores the whole message list in every checkpoint, so its put and its "
        "storage grow with the thread; AgentkeepSaver stores each message once (and shows it "
        "as a message of the thread's conversation), so both stay flat. A durable put pays one "
        "fsync for either saver."
    )


class Chat(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def _echo(state: Chat) -> dict[str, Any]:
    text = state["messages"][-1].content
    return {"messages": [AIMessage(f"echo: {text} " + "lorem ipsum dolor sit amet " * 4)]}


@dataclass
class Result:
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


def _size(path: Path, checkpoint: Callable[[], None]) -> int:
    checkpoint()
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def _run(
    name: str,
    saver: BaseCheckpointSaver[Any],
    path: Path,
    turns: int,
    checkpoint: Callable[[], None],
) -> Result:
    builder = StateGraph(Chat)
    builder.add_node("echo", _echo)
    builder.add_edge(START, "echo")
    builder.add_edge("echo", END)
    puts: list[float] = []
    _timed(saver, puts)
    graph = builder.compile(checkpointer=saver)
    config: Any = {"configurable": {"thread_id": "bench"}}
    base = _size(path, checkpoint)
    sizes = [base]
    for turn in range(turns):
        graph.invoke({"messages": [HumanMessage(f"turn {turn}: " + "words " * 30)]}, config)
        if turn % max(1, turns // 10) == 0 or turn == turns - 1:
            sizes.append(_size(path, checkpoint))
    tenth = max(1, len(puts) // 10)
    step = max(1, turns // 10)
    early = (sizes[2] - sizes[1]) / step if len(sizes) > 2 else 0.0
    late = (sizes[-1] - sizes[-2]) / max(1, (turns - 1) - step * (len(sizes) - 3))
    return Result(
        saver=name,
        turns=turns,
        put_ms_p50=statistics.median(puts) * 1000,
        put_ms_mean=statistics.fmean(puts) * 1000,
        put_ms_last=statistics.median(puts[-tenth:]) * 1000,
        bytes_per_turn_early=early,
        bytes_per_turn_late=late,
        total_bytes=sizes[-1] - base,
    )


def run(turns: int = 200) -> list[Result]:
    results = []
    with tempfile.TemporaryDirectory(dir="/tmp") as directory:
        lg_path = Path(directory) / "langgraph.db"
        conn = sqlite3.connect(lg_path, check_same_thread=False)
        lg = SqliteSaver(conn)
        lg.setup()

        def lg_checkpoint() -> None:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

        results.append(
            _run(
                "SqliteSaver",
                lg,
                lg_path,
                turns,
                lg_checkpoint,
            )
        )
        conn.close()
        ak_path = Path(directory) / "agentkeep.db"
        store = agentkeep.connect_sync(ak_path)

        def ak_checkpoint() -> None:
            with store.unit("read") as uow:
                uow.connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

        results.append(_run("AgentkeepSaver", AgentkeepSaver(store), ak_path, turns, ak_checkpoint))
        store.close()
    return results


def table(results: list[Result]) -> str:
    lines = [
        "| saver | turns | put p50 (ms) | put mean (ms) | put, last tenth (ms) | "
        "bytes/turn early | bytes/turn late | total bytes |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r.saver} | {r.turns} | {r.put_ms_p50:.2f} | {r.put_ms_mean:.2f} | "
            f"{r.put_ms_last:.2f} | "
            f"{r.bytes_per_turn_early:,.0f} | {r.bytes_per_turn_late:,.0f} | {r.total_bytes:,} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 turns: a smoke run")
    parser.add_argument("--turns", type=int, default=200)
    args = parser.parse_args()
    text = table(run(20 if args.quick else args.turns))
    print(text)
    if not args.quick:
        section = "\n\n".join([HEADING, INTRO, text, _ratios_note()])
        print(f"written to {write_section('langgraph', section)}")


if __name__ == "__main__":
    main()
