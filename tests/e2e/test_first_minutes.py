"""The README's "first ten minutes" block, run with bash as a newcomer would type it: start the
server, create an agent, chat with it, find the conversation in the web UI, stop, start again and
find it still there.

Only what cannot be the same here is changed: the port is a free one, and ``make run`` becomes
the command it runs (``agentkeep serve``), in a temporary directory, so the test leaves nothing
in the checkout.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_serve import agentkeep_env, free_port

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[2] / "README.md"


def first_minutes_block() -> str:
    text = README.read_text()
    section = text[text.index("## The first ten minutes") :]
    match = re.search(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    assert match is not None
    return match.group(1)


def test_the_first_ten_minutes_run_as_written(tmp_path: Path) -> None:
    port = free_port()
    serve = f"{sys.executable} -m agentkeep serve --port {port}"
    script = first_minutes_block().replace("localhost:8000", f"localhost:{port}")
    script = script.replace("make run", serve)
    assert "8000" not in script
    assert "make " not in script
    result = subprocess.run(
        ["bash", "-c", f"set -uo pipefail\n{script}"],
        cwd=tmp_path,
        env=agentkeep_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout
    assert result.returncode == 0, (output, result.stderr)
    assert "event: message_start" in output
    assert "event: message_end" in output
    assert "First chat" in output  # on the Home page
    listed = json.loads(output.strip().splitlines()[-1])  # after the restart
    (conversation,) = listed["items"]
    assert (conversation["title"], conversation["message_count"]) == ("First chat", 2)
    assert (tmp_path / ".agentkeep" / "agentkeep.db").exists()
