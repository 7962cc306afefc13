"""Every benchmark, one after another: ``make bench`` (full sizes, rewrites docs/benchmarks.md)
and ``make bench-quick`` (small sizes, nothing written: the smoke run CI makes).

    python -m bench                      # everything, full sizes (about 30 minutes here)
    python -m bench --quick              # everything, small sizes (under 3 minutes here)
    python -m bench --only store,http    # some of them

Each benchmark runs in a process of its own (as ``python -m bench.<name>``), so one's threads,
servers and caches never slow the next; a failing one fails the run after the rest have run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

BENCHMARKS = (
    "store",
    "append_parts",
    "http",
    "async_paths",
    "streaming",
    "triggers",
    "embedders",
    "memory",
    "chat_memory",
    "adk",
    "langgraph",
    "compare",
)
"""In the order ``make bench`` runs them: the store's own figures first, the slow comparison
with other libraries last."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, nothing written")
    parser.add_argument("--only", help="comma-separated names: " + ", ".join(BENCHMARKS))
    args = parser.parse_args(argv)
    names = BENCHMARKS if not args.only else tuple(args.only.split(","))
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    failed: list[str] = []
    took: list[tuple[str, float]] = []
    started = time.perf_counter()
    for name in names:
        command = [sys.executable, "-m", f"bench.{name}", *(["--quick"] if args.quick else [])]
        print(f"== {' '.join(command[1:])}", flush=True)
        began = time.perf_counter()
        code = subprocess.call(command)
        took.append((name, time.perf_counter() - began))
        if code != 0:
            failed.append(name)
            print(f"== bench.{name} failed (exit status {code})", flush=True)
    total = time.perf_counter() - started
    print("\n".join(f"{name:>12}: {seconds:6.1f} s" for name, seconds in took))
    print(f"{'all':>12}: {total:6.1f} s, load average now {_load()}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _load() -> str:
    try:
        return " / ".join(f"{value:.1f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
