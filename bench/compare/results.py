"""Reading the collected records: best-of-runs figures and each subject's like-for-like peers.

Every figure that enters a ratio is the subject's best run (highest rate, lowest median): noise on
a shared machine only ever slows a run down, so the best run is the closer estimate for each
subject, and taking it for every subject alike keeps the ratios fair. The tables show every run.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

Record = dict[str, Any]


class Results:
    def __init__(self, records: list[Record], meta: dict[str, Any]) -> None:
        self.records = records
        self.meta = meta
        sizes = meta.get("sizes", {})
        self.w3_sizes = [str(sizes.get("w3_small", 0)), str(sizes.get("w3_large", 0))]
        self.lengths = [str(n) for n in sizes.get("growth", [])]

    def runs(self, backend: str, key: str) -> list[Record]:
        found = [r for r in self.records if r["backend"] == backend and r["key"] == key]
        return sorted((r for r in found if "error" not in r), key=lambda r: int(r["run"]))

    def errors(self) -> list[Record]:
        return [r for r in self.records if "error" in r]

    def keys(self, backend: str, workload: str) -> list[str]:
        """Subjects with ``workload`` results on ``backend``, in plan order."""
        seen: list[str] = []
        for r in self.records:
            if r["backend"] == backend and r.get(workload) and r["key"] not in seen:
                seen.append(r["key"])
        return seen

    def first(self, backend: str, key: str) -> Record | None:
        runs = self.runs(backend, key)
        return runs[0] if runs else None

    def values(self, backend: str, key: str, get: Callable[[Record], Any]) -> list[float]:
        out = []
        for r in self.runs(backend, key):
            try:
                value = get(r)
            except (KeyError, TypeError):
                continue
            if value is not None:
                out.append(float(value))
        return out

    def best_rate(self, backend: str, key: str, workload: str = "w1") -> float | None:
        found = self.values(backend, key, lambda r: r[workload]["rate"])
        return max(found) if found else None

    def best_ms(self, backend: str, key: str, get: Callable[[Record], Any]) -> float | None:
        found = self.values(backend, key, get)
        return min(found) if found else None

    def best_at(self, backend: str, key: str, *path: str) -> float | None:
        """The lowest value at ``path`` (e.g. ``"w2", "last", "p50"``) over the runs."""

        def get(record: Record) -> Any:
            node: Any = record
            for part in path:
                node = node[part]
            return node

        return self.best_ms(backend, key, get)

    def raw_peer(self, backend: str, durability: str) -> str | None:
        """The raw-driver subject at the same durability on this backend."""
        for key in ("raw", "raw-delete-full", "raw-wal-normal"):
            record = self.first(backend, key)
            if record is not None and record.get("durability") == durability:
                return key
        return None

    @staticmethod
    def agentkeep_peer(record: Record) -> str:
        """agentkeep's API of the same kind: async for async libraries, sync otherwise."""
        return "agentkeep-async" if record.get("kind") == "async" else "agentkeep-sync"

    def growth_ms(self, backend: str, key: str, what: str, length: str) -> float | None:
        return self.best_ms(backend, key, lambda r: r["growth"][length][what]["p50"])

    def growth_ratio(self, backend: str, key: str, what: str) -> float | None:
        if len(self.lengths) < 2:
            return None
        low = self.growth_ms(backend, key, what, self.lengths[0])
        high = self.growth_ms(backend, key, what, self.lengths[-1])
        return high / low if low and high else None


def median_or_none(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def fmt_rate(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 1:
        return f"{value:.3f}"
    if value < 10:
        return f"{value:.2f}"
    if value < 100:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def fmt_ratio(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.2f}" if value < 10 else f"{value:,.0f}"


def ratio(top: float | None, bottom: float | None) -> float | None:
    return top / bottom if top is not None and bottom else None
