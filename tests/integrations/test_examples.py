"""The LangChain and LangGraph examples run and print what they promise; the checkpoint
benchmark's quick mode still runs."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parents[2] / "examples"


def test_the_langchain_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    runpy.run_path(str(EXAMPLES / "langchain" / "chat_history.py"))["main"]()
    out = capsys.readouterr().out
    assert "human: bought coffee for 300 roubles" in out
    assert "holds 4 messages" in out


def test_the_langgraph_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    runpy.run_path(str(EXAMPLES / "langgraph" / "chat_graph.py"))["main"]()
    out = capsys.readouterr().out
    assert "forked: ['bought coffee for 300 roubles', 'echo: bought coffee" in out
    assert "'no cake after all', 'echo: no cake after all']" in out
    assert "conversation: " in out  # a fork's first message is not yet shown (see saver docs)


@pytest.mark.slow
def test_the_checkpoint_benchmark_runs_quick() -> None:
    from bench import langgraph

    results = langgraph.run(turns=6)
    assert [r.saver for r in results] == ["SqliteSaver", "AgentkeepSaver"]
    assert all(r.put_ms_p50 > 0 and r.total_bytes > 0 for r in results)
