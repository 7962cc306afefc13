"""``python -m bench``: the runner behind ``make bench`` and ``make bench-quick``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_an_unknown_benchmark_is_refused_with_the_known_names() -> None:
    result = bench("--only", "store,nonsense")
    assert result.returncode == 2
    assert "unknown benchmark nonsense" in result.stderr
    assert "store" in result.stderr
    assert "compare" in result.stderr


@pytest.mark.slow
def test_quick_runs_each_benchmark_in_its_own_process_and_reports_the_time() -> None:
    result = bench("--quick", "--only", "triggers")
    assert result.returncode == 0, result.stderr
    assert "== -m bench.triggers --quick" in result.stdout
    assert "triggers:" in result.stdout
    assert "all:" in result.stdout
