"""The LangChain and LangGraph examples run and print what they promise."""

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
    # six messages, then the fork's two: the conversation keeps what the thread showed before
    assert "conversation: 8 messages" in out
