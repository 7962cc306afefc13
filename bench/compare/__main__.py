"""agentkeep against Google ADK, LangChain and LangGraph, and the raw drivers, on one workload.

    python -m bench.compare                  # full run: section "comparison" of docs/benchmarks.md
    python -m bench.compare --quick          # tiny sizes, one run, prints only
    python -m bench.compare --skip-anchors   # agentkeep and the raw drivers only (no venv)
    python -m bench.compare --only sqlite    # one backend

The anchors are installed into ``.bench-venv`` (from ``requirements-anchors.txt``) on first use.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from bench.compare import render, venv
from bench.compare.orchestrate import Options, run
from bench.compare.plan import BOTH
from bench.compare.results import Results
from bench.compare.workload import Sizes, quick
from bench.report import DOC, write_section

IMAGES = DOC.parent / render.IMAGES
RESULTS = IMAGES / "comparison-results.json"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one run, no writing")
    parser.add_argument("--only", choices=BOTH, help="one backend")
    parser.add_argument("--skip-anchors", action="store_true", help="agentkeep and raw only")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--runs", type=int, help="runs per subject (default 2; --quick: 1)")
    parser.add_argument("--subjects", help="comma-separated plan keys (default: all)")
    parser.add_argument(
        "--render", action="store_true", help=f"rewrite the page from {RESULTS.name}, no run"
    )
    return parser.parse_args(argv)


def options(args: argparse.Namespace) -> Options:
    sizes: Sizes = quick() if args.quick else Sizes()
    return Options(
        sizes=sizes,
        backends=(args.only,) if args.only else BOTH,
        anchors=not args.skip_anchors,
        runs=args.runs or (1 if args.quick else 2),
        keys=frozenset(args.subjects.split(",")) if args.subjects else None,
    )


def command(argv: list[str]) -> str:
    return " ".join(["python -m bench.compare", *argv])


def plots() -> list[str]:
    """PNG names, made in the anchors' venv (where matplotlib is), if it exists."""
    if not venv.is_ready():
        print("no .bench-venv: plots skipped (run with the anchors once)", flush=True)
        return []
    done = subprocess.run(
        [str(venv.python()), "-m", "bench.compare.plots", str(RESULTS), str(IMAGES)],
        cwd=venv.ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        print(f"plots failed: {done.stderr[-1500:]}", flush=True)
        return []
    return done.stdout.split()


def main(argv: list[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else argv
    args = parse(given)
    if args.render:
        saved = json.loads(RESULTS.read_text())
        results = Results(saved["records"], saved["meta"])
        made = saved["meta"].get("command", "python -m bench.compare")
        text = render.markdown(results, made, sorted(p.name for p in IMAGES.glob("compare-*.png")))
        print(f"wrote {write_section('comparison', text)}", flush=True)
        return 0
    report = run(options(args))
    report.meta["command"] = command(given)
    results = Results(report.records, report.meta)
    write = not (args.quick or args.no_write)
    images: list[str] = []
    if write:
        IMAGES.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps({"meta": report.meta, "records": report.records}, indent=1))
        images = plots()
    text = render.markdown(results, command(given), images)
    print(text, flush=True)
    if write:
        print(f"wrote {write_section('comparison', text)}", flush=True)
    return 1 if results.errors() else 0


if __name__ == "__main__":
    sys.exit(main())
