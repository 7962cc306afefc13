"""PNG plots of a comparison run, made with matplotlib in the anchors' venv (the product does not
depend on matplotlib):

    .bench-venv/bin/python -m bench.compare.plots RESULTS.json OUTDIR

Per backend: W1 rates (bars: best run; dots: every run), the reads (W2, W3 medians) and the growth
curves (median per call against conversation length). Log scales: the subjects differ by orders
of magnitude.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.compare.anchors import lib
from bench.compare.plan import POSTGRES, SQLITE
from bench.compare.results import Results

TITLES = {SQLITE: "SQLite", POSTGRES: "PostgreSQL"}
AGENTKEEP = "#1f77b4"
OTHER = "#999999"


def _pyplot() -> Any:
    matplotlib = lib("matplotlib")
    matplotlib.use("Agg")
    return lib("matplotlib.pyplot")


def _name(record: dict[str, Any]) -> str:
    short = record["durability"].replace("journal_mode=", "").replace("synchronous=", "")
    return f"{record['label']} [{short.replace('synchronous_commit=', 'sync commit ')}]"


def _colour(record: dict[str, Any]) -> str:
    return AGENTKEEP if record["group"] == "agentkeep" else OTHER


def w1(plt: Any, res: Results, backend: str, out: Path) -> Path:
    bars: list[tuple[str, float, list[float], str]] = []
    for workload, suffix in (("w1", ""), ("w1c", " x16 clients")):
        for key in res.keys(backend, workload):
            runs = res.runs(backend, key)
            rates = [r[workload]["rate"] for r in runs]
            bars.append((_name(runs[0]) + suffix, max(rates), rates, _colour(runs[0])))
    fig, ax = plt.subplots(figsize=(10, 0.38 * len(bars) + 1.5))
    ys = range(len(bars))
    ax.barh(list(ys), [b[1] for b in bars], color=[b[3] for b in bars])
    for y, bar in zip(ys, bars, strict=True):
        ax.plot(bar[2], [y] * len(bar[2]), "k.", markersize=4)
    ax.set_yticks(list(ys), [b[0] for b in bars], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("acknowledged appends per second (log; bar: best run, dots: each run)")
    ax.set_title(f"{TITLES[backend]}: W1 append rate")
    return _save(plt, fig, out / f"compare-w1-{backend}.png")


def reads(plt: Any, res: Results, backend: str, out: Path) -> Path:
    small, large = res.w3_sizes
    series = {
        "last 50 (W2)": ("w2", "last"),
        "full history (W2)": ("w2", "full"),
        f"list at {int(small):,} (W3)": ("w3", small),
        f"list at {int(large):,} (W3)": ("w3", large),
    }
    keys = res.keys(backend, "w2")
    fig, ax = plt.subplots(figsize=(10, 0.9 * len(keys) + 1.5))
    height = 0.8 / len(series)
    for i, (name, (workload, part)) in enumerate(series.items()):
        values = [res.best_ms(backend, k, _p50(workload, part)) or 0.0 for k in keys]
        ax.barh([y + i * height for y in range(len(keys))], values, height, label=name)
    ax.set_yticks([y + 0.4 - height / 2 for y in range(len(keys))])
    ax.set_yticklabels([_name(res.runs(backend, k)[0]) for k in keys], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("median ms per call, best run (log; missing bar: no such API)")
    ax.set_title(f"{TITLES[backend]}: reads")
    ax.legend(fontsize=8)
    return _save(plt, fig, out / f"compare-reads-{backend}.png")


def _p50(workload: str, part: str) -> Callable[[dict[str, Any]], Any]:
    return lambda r: r[workload][part]["p50"]


def growth(plt: Any, res: Results, backend: str, out: Path) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    lengths = [int(n) for n in res.lengths]
    for ax, (what, title) in zip(
        axes, (("append", "one append"), ("last", "last 50")), strict=True
    ):
        for key in res.keys(backend, "growth"):
            first = res.runs(backend, key)[0]
            ys = [res.growth_ms(backend, key, what, str(n)) for n in lengths]
            style = "-o" if first["group"] == "agentkeep" else "--."
            ax.plot(lengths, ys, style, label=first["label"], markersize=4)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("messages in the conversation")
        ax.set_ylabel("median ms per call, best run")
        ax.set_title(f"{TITLES[backend]}: {title}")
    axes[1].legend(fontsize=7)
    return _save(plt, fig, out / f"compare-growth-{backend}.png")


def _save(plt: Any, fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def make(results_path: Path, out: Path) -> list[Path]:
    data = json.loads(results_path.read_text())
    res = Results(data["records"], data["meta"])
    plt = _pyplot()
    out.mkdir(parents=True, exist_ok=True)
    made = []
    for backend in (SQLITE, POSTGRES):
        if not res.keys(backend, "w1"):
            continue
        made.append(w1(plt, res, backend, out))
        if res.keys(backend, "w2"):
            made.append(reads(plt, res, backend, out))
        if res.keys(backend, "growth"):
            made.append(growth(plt, res, backend, out))
    return made


if __name__ == "__main__":
    for path in make(Path(sys.argv[1]), Path(sys.argv[2])):
        print(path.name)
