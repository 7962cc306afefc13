"""The README's Python examples run as written (on the in-memory store unless they name a
file, which goes in a temporary directory)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import anyio
import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_readme_has_python_examples() -> None:
    assert len(_python_blocks()) >= 2


@pytest.mark.parametrize("index", range(len(_python_blocks())))
def test_readme_example_runs(index: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AGENTKEEP_DATABASE_URL", "memory")
    monkeypatch.chdir(tmp_path)  # an example may open a file of its own
    source = _python_blocks()[index]
    namespace: dict[str, object] = {}
    if "await " in source:
        body = textwrap.indent(source, "    ")
        exec(f"async def _example():\n{body}\n    db.close()\n", namespace)
        anyio.run(namespace["_example"])  # type: ignore[arg-type]
    else:
        exec(source + "\ndb.close()\n", namespace)
