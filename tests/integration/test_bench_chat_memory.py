"""The chat-memory benchmark still runs (small sizes, nothing written): benchmarks must not rot."""

from __future__ import annotations

import pytest
from bench import chat_memory


@pytest.mark.slow
def test_quick_chat_memory_benchmark_runs_on_both_backends() -> None:
    results = chat_memory.run(chat_memory.Sizes(turns=3, per_user=20), write=False)
    assert [r.backend for r in results] == ["SQLite", "PostgreSQL"]
    for result in results:
        assert set(result.first_token) == {subject.label for subject in chat_memory.SUBJECTS}
        assert all(ms > 0 for values in result.first_token.values() for ms in values)
        assert len(result.recalled) == 3
        assert any(result.recalled)  # the user's memories were found and put into the prompt
