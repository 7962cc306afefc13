"""The comparison benchmark still runs (tiny sizes, agentkeep and the raw drivers, in-process,
nothing written, no anchors' venv): benchmarks must not rot."""

from __future__ import annotations

import pytest
from bench.compare import orchestrate
from bench.compare.workload import quick


@pytest.mark.slow
def test_comparison_runs_on_both_backends(postgres_server_url: str) -> None:
    sizes = quick()
    sizes.w1_conversations, sizes.w1_messages, sizes.clients = 2, 5, 2
    sizes.w3_small, sizes.w3_large, sizes.growth = 8, 16, [5, 20]
    sizes.loads = sizes.growth_samples = 3
    options = orchestrate.Options(
        sizes=sizes, anchors=False, runs=1, in_process=True, server_url=postgres_server_url
    )
    report = orchestrate.run(options)

    assert not [r for r in report.records if "error" in r]
    subjects = {(r["backend"], r["key"]) for r in report.records}
    for backend in ("sqlite", "postgres"):
        for key in ("raw", "agentkeep-sync", "agentkeep-async"):
            assert (backend, key) in subjects
    for record in report.records:
        assert record["w1"]["rate"] > 0
        if "w2" in record:
            assert record["w2"]["last"]["p50"] > 0
            assert record["w2"]["full"]["returned"] == sizes.w2_messages
            assert record["w3"]["16"]["returned"] > 0
            assert all(v["append"]["p50"] > 0 for v in record["growth"].values())
            assert record["w1c"]["rate"] > 0
