"""The store benchmark still runs (small sizes, nothing written): benchmarks must not rot."""

from __future__ import annotations

import pytest
from bench import store


@pytest.mark.slow
def test_quick_benchmark_runs_on_both_backends() -> None:
    results = store.run(
        store.Sizes(appends=30, history=60, conversations=40, users=4, loads=20), write=False
    )
    assert [r.backend for r in results] == ["SQLite", "PostgreSQL"]
    for result in results:
        workloads = {row[0] for row in result.rows}
        assert "append (appends/s)" in workloads
        assert "last 50 messages (ms, p50 / p95)" in workloads
        assert "list 20 conversations (ms, p50 / p95)" in workloads
        assert all(row[2] for row in result.rows)
