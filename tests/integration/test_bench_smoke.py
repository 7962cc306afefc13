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


@pytest.mark.slow
def test_quick_http_benchmark_runs_on_both_backends() -> None:
    from bench import http

    results = http.run(http.Sizes(clients=2, requests=5, history=60, workers=(1, 2)), write=False)
    assert [r.backend for r in results] == ["SQLite", "PostgreSQL"]
    for result in results:
        floor = "HTTP floor: uvicorn + FastAPI, no store"
        assert set(result.runs) == {
            (workload, subject)
            for workload in ("append", "last 50")
            for subject in (
                "HTTP, 1 worker",
                "HTTP, 2 workers",
                f"{floor}, 1 worker",
                f"{floor}, 2 workers",
                "Python API",
            )
        }
        assert all(run.rate > 0 and run.p99 >= run.p50 > 0 for run in result.runs.values())


@pytest.mark.slow
def test_quick_async_paths_benchmark_measures_every_path_on_both_backends() -> None:
    import asyncio

    from bench import async_paths

    sizes = async_paths.Sizes(operations=16, rounds=1)
    backends, hops = asyncio.run(async_paths.run_all(sizes))
    assert [b.name for b in backends] == ["SQLite", "PostgreSQL"]
    sqlite, postgres = backends
    assert ("append", 16, async_paths.HOP) not in sqlite.figures  # one writer at a time
    assert ("append", 16, async_paths.HOP) in postgres.figures
    assert ("last 50", 16, async_paths.FLOOR) not in postgres.figures  # the floor is one client
    assert {name for (_, _, name) in postgres.figures} == {s.name for s in postgres.subjects}
    assert len(postgres.subjects) == 5
    assert async_paths.BRIDGED in {s.name for s in postgres.subjects}
    assert all(rate > 0 and cpu > 0 for b in backends for ((rate, cpu),) in b.figures.values())
    assert set(hops) == {
        "agentkeep's hop (in_worker_thread)",
        "anyio.to_thread.run_sync",
        "asyncio.to_thread",
    }
    assert "| last 50 | 16 |" in async_paths.render(backends, hops, sizes)


@pytest.mark.slow
def test_quick_streaming_benchmark_runs_on_both_backends() -> None:
    from bench import streaming

    results = streaming.run(streaming.Sizes(turns=5, long_words=50, long_turns=1), write=False)
    assert [r.backend for r in results] == ["SQLite", "PostgreSQL"]
    for result in results:
        assert set(result.first_token) == {"HTTP (SSE)", "in process"}
        assert all(ms > 0 for values in result.first_token.values() for ms in values)
        assert all(rate > 0 for rate in result.tokens_per_s)


@pytest.mark.slow
def test_short_load_benchmark_runs_on_both_backends_without_errors() -> None:
    from bench import load

    results = load.run(["sqlite", "postgresql"], load.Options(duration=3, clients=2, processes=1))
    assert [r.backend for r in results] == ["SQLite", "PostgreSQL"]
    for result in results:
        assert result.errors == 0, result.tally.examples
        assert result.left_streaming == 0
        assert result.exit_status == 0
        assert all(result.tally.latencies.get(op) for op in ("append", "last 50", "stream"))
        assert all(values for values in result.samples.values())  # resources were sampled


@pytest.mark.slow
def test_quick_embedders_benchmark_measures_each_embedder() -> None:
    from bench import embedders

    text = embedders.main(quick=True)
    assert "hash-384, 200 short sentences, cold cache" in text
    assert "all-MiniLM-L6-v2, 200 short sentences" in text or "not installed" in text
    assert "nan" not in text.lower()


@pytest.mark.slow
def test_quick_adk_benchmark_runs() -> None:
    pytest.importorskip("google.adk")
    from bench import adk

    sizes = adk.Sizes(events=10, sessions=20, reads=2)
    results = adk.run(sizes)
    assert [(r.backend, r.subject) for r in results] == [
        ("SQLite", "ADK DatabaseSessionService"),
        ("SQLite", "ADK SqliteSessionService"),
        ("SQLite", "AgentkeepSessionService"),
        ("PostgreSQL", "ADK DatabaseSessionService"),
        ("PostgreSQL", "AgentkeepSessionService"),
    ]
    assert all(r.append_per_s > 0 and r.load_ms > 0 and r.listed == 1 for r in results)
    text = adk.table(results, sizes)
    assert "### PostgreSQL" in text
    assert "agentkeep vs DatabaseSessionService" in text


def test_quick_langgraph_benchmark_compares_the_savers_on_both_backends() -> None:
    from bench import langgraph

    results = langgraph.run(turns=6, postgres=True)
    assert [r.saver for r in results] == [
        "SqliteSaver",
        "AgentkeepSaver",
        "PostgresSaver",
        "AgentkeepSaver",
    ]
    assert all(r.put_ms_p50 > 0 and r.total_bytes > 0 for r in results)


def test_quick_memory_benchmark_runs_on_both_backends_and_finds_the_nearest() -> None:
    from bench import memory

    sizes = memory.Sizes(n=1200, clusters=24, users=10, queries=12)
    results, hashing = memory.run(sizes)
    assert hashing > 0
    assert [r.backend for r in results] == ["SQLite", "PostgreSQL"]
    for result in results:
        assert result.insert_rate > 0
        names = {s.name for s in result.searches}
        assert {
            "db.memories.search",
            "db.memory.recall with text, one user of 10",
            "db.memory.list, one user of 10, a page of 20",
        } <= names
        assert all(s.p99 >= s.p50 > 0 for s in result.searches)
        for search in result.searches:
            if search.recall is not None:  # exact on SQLite; HNSW on a small set finds them too
                assert search.recall >= 0.9, (result.backend, search.name, search.recall)
    text = memory.render(results, hashing, sizes, "python -m bench.memory --quick")
    assert "## Memory search" in text
    assert "nan" not in text.lower()
    assert memory.svg(results).startswith("<svg")
