"""The profiler of the hot paths still runs (few calls): it is how an append's cost is shown."""

from __future__ import annotations

import re

import pytest
from bench import profile


@pytest.mark.slow
def test_an_append_is_timed_against_its_floor_and_profiled(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert profile.main(["append", "--synchronous", "OFF", "--calls", "40", "--rounds", "2"]) == 0
    out = capsys.readouterr().out
    timed = re.search(r"append \(sync API\): ([\d.]+) ms per call, ([\d.]+) ms CPU", out)
    floor = re.search(r"raw driver: ([\d.]+) ms CPU per append .*agentkeep's own: (-?[\d.]+)", out)
    assert timed is not None, out
    assert floor is not None, out
    assert float(timed[2]) > 0
    assert float(floor[1]) > 0
    assert "ncalls" in out  # the profile's table
    assert "append" in out.split("ncalls", 1)[1]


@pytest.mark.slow
@pytest.mark.parametrize("path", ["append", "last50"])
def test_the_async_api_is_timed_without_a_profile(
    capsys: pytest.CaptureFixture[str], path: str
) -> None:
    argv = [path, "--api", "async", "--calls", "10", "--rounds", "2", "--top", "0"]
    assert profile.main(argv) == 0
    out = capsys.readouterr().out
    assert re.search(rf"{path} \(async API\): [\d.]+ ms per call, [\d.]+ ms CPU", out), out
    assert "ncalls" not in out
