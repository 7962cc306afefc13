"""One subject, one backend, one run, in a process of its own (stdlib only).

    python -m bench.compare.child SPEC.json OUT.json

The orchestrator starts this with the product's interpreter (agentkeep, raw drivers) or the
anchors' (ADK, LangChain, LangGraph), so every run starts cold and no library's state (pools,
caches, garbage) leaks into another's numbers. ``SPEC`` names the members (each a module whose
``open_subject(spec)`` builds a :class:`~bench.compare.measure.Subject`, and its options), the
backend and where the database they share is, the sizes and the workloads; ``OUT`` receives one
result per member, or the error.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
import traceback
from pathlib import Path
from typing import Any

from bench.compare import measure
from bench.compare.workload import Sizes


async def run_spec(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Open every member of the spec on its (shared) database, drive them, close them."""
    subjects: list[measure.Subject] = []
    try:
        for member in spec["members"]:
            module = importlib.import_module(member["module"])
            subjects.append(await module.open_subject({**spec, "options": member["options"]}))
        return await measure.run(subjects, Sizes.from_dict(spec["sizes"]), spec["workloads"])
    finally:
        for subject in subjects:
            await subject.close()


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    try:
        result: Any = asyncio.run(run_spec(spec))
    except Exception:
        result = {"error": traceback.format_exc(limit=8)}
    Path(argv[1]).write_text(json.dumps(result))
    return 1 if isinstance(result, dict) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
