"""The issue's targets for agentkeep, checked against this run (best run of each subject), and the
closing note naming, for each target missed, what the run itself shows the time goes to.

Flat means within 2x: at 100,000 against the smallest size (growth), or at the larger W3 size
against the smaller.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.compare.plan import POSTGRES, SQLITE
from bench.compare.results import Results, fmt_ms, fmt_rate, fmt_ratio, ratio

TITLES = {SQLITE: "SQLite", POSTGRES: "PostgreSQL"}
FLAT = 2.0


@dataclass
class Check:
    backend: str
    target: str
    api: str
    measured: str
    met: bool | None
    why: str = ""


def checks(res: Results) -> list[Check]:
    out: list[Check] = []
    for backend in (SQLITE, POSTGRES):
        if not res.runs(backend, "agentkeep-sync"):
            continue
        for api in ("sync", "async"):
            key = f"agentkeep-{api}"
            out += _w1(res, backend, api, key)
            out += _reads(res, backend, api, key)
            out += _growth(res, backend, api, key)
    return out


def _at_least(
    backend: str, target: str, api: str, value: float | None, minimum: float, why: str = ""
) -> Check:
    met = None if value is None else value >= minimum
    return Check(backend, target, api, f"{fmt_ratio(value)}x", met, why)


def _under(
    backend: str, target: str, api: str, value: float | None, limit: float, why: str
) -> Check:
    met = None if value is None else value < limit
    return Check(backend, target, api, f"{fmt_ms(value)} ms", met, why)


def _w1(res: Results, backend: str, api: str, key: str) -> list[Check]:
    ak = res.best_rate(backend, key)
    adk_min, lc_min = (10.0, 3.0) if backend == SQLITE else (5.0, 1.0)
    lc_key = "langchain-sql" if backend == SQLITE else "langchain-postgres"
    raw_key = res.raw_peer(backend, (res.first(backend, key) or {}).get("durability", ""))
    raw = res.best_rate(backend, raw_key) if raw_key else None
    hop = (
        "the rest is SQLAlchemy's execution path and validating the input and output models"
        if api == "sync"
        else "the async API runs each call in a worker thread (one hop per append); the sync "
        f"API's ratio, {fmt_ratio(ratio(res.best_rate(backend, 'agentkeep-sync'), raw))}, is "
        "what is left without it"
    )
    many = res.best_rate(backend, key, "w1c")
    one = res.best_rate(backend, "raw")
    clients = res.meta.get("sizes", {}).get("clients")
    crowd = (
        f"{fmt_ratio(ratio(many, ak))}x agentkeep's own one-client rate (the raw driver from "
        f"{clients} threads: {fmt_ratio(ratio(res.best_rate(backend, 'raw', 'w1c'), one))}x its "
        "one-client rate): "
        + (
            "appends waiting at the same time share one commit (group commit), so the fsync no "
            f"longer sets the pace; {clients} Python threads on 2 cores do, each append's CPU "
            "(SQLAlchemy's execution path, the models) serialised by the GIL"
            if backend == SQLITE
            else "each connection commits on its own and PostgreSQL groups their WAL flushes; "
            "the Python side of each append (SQLAlchemy, the models) shares 2 cores and the GIL"
        )
    )
    if api == "async":
        threads = res.best_rate(backend, "agentkeep-sync", "w1c")
        crowd += (
            f"; the sync API from {clients} threads makes {fmt_rate(threads)}/s on the same "
            f"store, so the difference is the async API's path: {clients} tasks on one event "
            "loop, each call a hop to a worker thread and back"
        )
    adk, langchain = res.best_rate(backend, "adk"), res.best_rate(backend, lc_key)
    return [
        _at_least(backend, f"W1 >= {adk_min:.0f}x ADK", api, ratio(ak, adk), adk_min,
                  _ceiling(raw, adk, "ADK", backend) + "; " + hop),
        _at_least(backend, f"W1 >= {lc_min:.0f}x LangChain", api, ratio(ak, langchain), lc_min,
                  _ceiling(raw, langchain, "LangChain", backend) + "; " + hop),
        _at_least(backend, "W1 >= 0.6x raw driver, same durability", api, ratio(ak, raw), 0.6, hop),
        _at_least(backend, f"W1c, {clients} clients > raw, one client", api, ratio(many, one),
                  1, crowd),
    ]  # fmt: skip


def _ceiling(raw: float | None, anchor: float | None, name: str, backend: str) -> str:
    """What the raw driver, doing agentkeep's SQL at agentkeep's durability, reaches against
    the anchor: agentkeep cannot pass it."""
    reach = f"the raw driver doing agentkeep's SQL reaches {fmt_ratio(ratio(raw, anchor))}x {name}"
    if backend == SQLITE:
        return f"{reach} (each durable commit's fsync sets every subject's pace here)"
    if name == "LangChain":
        return f"{reach}: {LEAN_INSERT.format(indexes='one index')}"
    return reach


def _reads(res: Results, backend: str, api: str, key: str) -> list[Check]:
    small, large = res.w3_sizes

    def floor(*path: str) -> str:
        query = "the query" if backend == SQLITE else "the query and its round trip"
        return (
            f"the raw driver's {fmt_ms(res.best_at(backend, 'raw', *path))} ms is {query}; the "
            "rest is decoding each row's UUID, timestamp and JSON columns in Python and building "
            "a typed model per row (its metadata checked, its tool calls validated)"
            + ("" if api == "sync" else ", plus the worker-thread hop")
        )

    full_why = floor("w2", "full", "p50")
    w3_small = res.best_at(backend, key, "w3", small, "p50")
    w3_large = res.best_at(backend, key, "w3", large, "p50")
    raw_small = res.best_at(backend, "raw", "w3", small, "p50")
    raw_flat = ratio(res.best_at(backend, "raw", "w3", large, "p50"), raw_small)
    flat_why = f"the raw driver's ratio on the same data is {fmt_ratio(raw_flat)}x"
    w2_size = f"{res.meta.get('sizes', {}).get('w2_messages', 0):,}"
    last = res.best_at(backend, key, "w2", "last", "p50")
    full = res.best_at(backend, key, "w2", "full", "p50")
    flat = ratio(w3_large, w3_small)
    return [
        _under(backend, "W2 last 50 < 1 ms (median)", api, last, 1.0, floor("w2", "last", "p50")),
        _under(backend, f"W2 full {w2_size} < 25 ms (median)", api, full, 25.0, full_why),
        _under(backend, f"W3 < 1 ms at {int(small):,}", api, w3_small, 1.0,
               floor("w3", small, "p50")),
        _at_most(backend, f"W3 flat at {int(large):,} (vs {int(small):,})", api, flat, flat_why),
    ]  # fmt: skip


def _at_most(backend: str, target: str, api: str, value: float | None, why: str) -> Check:
    met = None if value is None else value <= FLAT
    return Check(backend, target, api, f"{fmt_ratio(value)}x", met, why)


def _growth(res: Results, backend: str, api: str, key: str) -> list[Check]:
    if len(res.lengths) < 2:
        return []
    span = f"{int(res.lengths[-1]):,} / {int(res.lengths[0]):,}"
    out = []
    for what, name in (("append", "append"), ("last", "last 50")):
        raw = res.growth_ratio(backend, "raw", what)
        sync = res.growth_ratio(backend, "agentkeep-sync", what)
        why = f"the raw driver's ratio on the same conversation is {fmt_ratio(raw)}x" + (
            f", the sync API's {fmt_ratio(sync)}x: the query does not grow; the async API adds its "
            "worker-thread hop, which varies from sample to sample on this machine"
            if api == "async"
            else ""
        )
        flat = res.growth_ratio(backend, key, what)
        out.append(_at_most(backend, f"growth: {name} flat ({span})", api, flat, why))
    return out


def section(res: Results) -> list[str]:
    found = checks(res)
    if not found:
        return []
    lines = [
        "### Against the targets",
        "",
        "Best run of each subject; `async` rows compare agentkeep's async API.",
        "",
        "| backend | target | agentkeep API | measured | met |",
        "|---|---|---|---:|---|",
    ]
    for c in found:
        met = "n/a" if c.met is None else ("yes" if c.met else "**no**")
        lines.append(f"| {TITLES[c.backend]} | {c.target} | {c.api} | {c.measured} | {met} |")
    return [*lines, ""]


def closing(res: Results) -> list[str]:
    missed = [c for c in checks(res) if c.met is False]
    lines = ["### Where agentkeep is behind, and why", ""]
    if not missed:
        lines.append("Every target above was met in this run.")
    for c in missed:
        why = c.why[:1].upper() + c.why[1:]
        lines.append(f"- {TITLES[c.backend]}, {c.target}, {c.api} API: {c.measured}. {why}.")
    beaten = behind(res)
    if beaten:
        lines += [
            "",
            "Where an anchor beats agentkeep (best runs, agentkeep's API of its kind):",
            "",
        ]
    return [*lines, *beaten, ""]


LEAN_INSERT = (
    "its append is one INSERT into a table with {indexes} and nothing else to maintain, where "
    "agentkeep's also moves the conversation's counters, sequence number and activity time and "
    "keeps six message indexes, full-text search among them, up to date"
)
WHY_FASTER = {
    ("w1", "langgraph"): "its append writes one checkpoint, the whole conversation as one blob, "
    "into tables keyed by thread, and maintains nothing else; the blob grows with the "
    "conversation, and so does the cost (growth table)",
    ("w1", "langchain-postgres"): LEAN_INSERT.format(indexes="one index"),
    ("w1", "langchain-sql"): LEAN_INSERT.format(indexes="no index but its key"),
    ("full", ""): "it reads every row into light objects (tuples, dicts or its own plain "
    "classes); agentkeep builds a typed model per message",
    ("storage", ""): "it keeps one JSON text per message; agentkeep's row has typed columns (ids, "
    "sequence number, role, status, timestamps, metadata) and six indexes plus full-text search",
}
# (metric, path into a record, higher is better)
METRICS: list[tuple[str, str, tuple[str, ...], bool]] = [
    ("w1", "W1 appends/s", ("w1", "rate"), True),
    ("last", "W2 last 50, ms", ("w2", "last", "p50"), False),
    ("full", "W2 full history, ms", ("w2", "full", "p50"), False),
    ("storage", "bytes per message", ("w1", "bytes_per_message"), False),
]


def behind(res: Results) -> list[str]:
    out = []
    for backend in (SQLITE, POSTGRES):
        for key in ("adk", "langchain-sql", "langchain-postgres", "langgraph"):
            first = res.first(backend, key)
            if first is None:
                continue
            peer = res.agentkeep_peer(first)
            for metric, name, path, higher in METRICS:
                mine, theirs = _best(res, backend, peer, path), _best(res, backend, key, path)
                if mine is None or theirs is None or (theirs <= mine if higher else theirs >= mine):
                    continue
                why = WHY_FASTER.get((metric, key)) or WHY_FASTER.get((metric, ""), "")
                out.append(
                    f"- {TITLES[backend]}, {name}: {first['label']} {_num(theirs)}, agentkeep "
                    f"({peer.removeprefix('agentkeep-')}) {_num(mine)}"
                    + (f". {why[:1].upper() + why[1:]}." if why else ".")
                )
    return out


def _best(res: Results, backend: str, key: str, path: tuple[str, ...]) -> float | None:
    if path[-1] == "rate":
        return res.best_rate(backend, key, path[0])
    return res.best_at(backend, key, *path)


def _num(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else fmt_ms(value)
