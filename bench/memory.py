"""Memory benchmark: storing memories and finding them by meaning, on SQLite and PostgreSQL.

    python -m bench.memory              # 100,000 memories: the "memory" section of benchmarks.md
    python -m bench.memory --n 20000    # another size (also written)
    python -m bench.memory --quick      # 3,000 memories, prints only (a smoke run)

The corpus: ``n`` memories of 384 dimensions for 100 users. Random vectors are the worst case of
an approximate index and unlike real embeddings, so the vectors are clustered: 1,000 gaussian
centres (fewer in a quick run), each memory its centre plus gaussian noise, normalised (cosine
~0.5 within a cluster, ~0 across), as sentence embeddings of many topics are. Each query is a new
point of a random cluster. Each memory's text names its cluster (``kestrel417``), so a recall with
text also finds memories by their words.

Measured, on a SQLite file (WAL, synchronous=FULL) and on PostgreSQL (embedded, unix socket):

- insert: ``db.memory.remember_many`` in batches of 1,000 memories with their embeddings given
  (what a store costs, not an embedder), in memories per second; and separately how long the
  built-in ``hash`` embedder takes for 1,000 texts;
- on SQLite, the same search reading every vector from the table (what a write unit does, and
  every search did before the in-process matrix), on a few queries: the before and after;
- on SQLite, the floor: numpy's matrix-vector product over the same vectors held in this
  process, with no store at all, timed in the same minute (the machine is shared and busy);
- search: latency p50 / p99 of ``k = 10`` through ``db.memories.search`` (the vector primitive)
  and ``db.memory.recall`` (vector and words, ranked, no access counted), each over all memories
  and filtered to one user among 100; recall@10 of the primitive against an exact search (numpy
  over every vector); and the first search after opening the store (SQLite builds its in-process
  matrix then);
- listing: a page of memories newest first (what the web UI's Memory page shows without a
  query), of every user and of one.

Timings on a shared 2-core machine are noisy: the recall figures are exact, the latencies are
indications.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

import agentkeep
from agentkeep import MemoryCreate
from agentkeep.memory.hashing import HashEmbedder
from bench.report import on_both_backends, write_section

Matrix = npt.NDArray[np.float32]
MODEL = "bench-clustered-384"
DIMENSION = 384
BATCH = 1000
K = 10
SQLITE_P50_MS = 25.0
POSTGRES_P50_MS = 5.0
MIN_RECALL = 0.95
TABLE_READS = 10
LIST_PAGE = 20
FLOOR = "floor: numpy alone, the same product over every vector (no store)"
TABLE_PATH = "db.memories.search, vectors read from the table"
IMAGE = Path(__file__).resolve().parent.parent / "docs" / "img" / "memory-search.svg"


@dataclass(frozen=True)
class Sizes:
    n: int = 100_000
    clusters: int = 1000
    users: int = 100
    queries: int = 200
    noise: float = 0.05
    """Standard deviation of each coordinate of a memory's offset from its centre."""


QUICK = Sizes(n=3000, clusters=60, users=100, queries=40)


@dataclass
class Corpus:
    vectors: Matrix
    clusters: npt.NDArray[np.int64]
    users: npt.NDArray[np.int64]
    queries: Matrix
    query_clusters: npt.NDArray[np.int64]
    query_users: npt.NDArray[np.int64]


def corpus(sizes: Sizes, seed: int = 7) -> Corpus:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((sizes.clusters, DIMENSION)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)

    def around(of: npt.NDArray[np.int64]) -> Matrix:
        points = centres[of] + rng.normal(0, sizes.noise, (len(of), DIMENSION)).astype(np.float32)
        normalised: Matrix = points / np.linalg.norm(points, axis=1, keepdims=True)
        return normalised

    clusters = rng.integers(0, sizes.clusters, sizes.n)
    query_clusters = rng.integers(0, sizes.clusters, sizes.queries)
    return Corpus(
        vectors=around(clusters),
        clusters=clusters,
        users=np.arange(sizes.n) % sizes.users,
        queries=around(query_clusters),
        query_clusters=query_clusters,
        query_users=rng.integers(0, sizes.users, sizes.queries),
    )


def content(i: int, cluster: int) -> str:
    return f"Memory {i}: notes on kestrel{cluster} from day {i % 365} of the project"


def question(cluster: int) -> str:
    return f"tell me about kestrel{cluster}"


def exact(data: Corpus, query: Matrix, among: npt.NDArray[np.int64] | None) -> set[int]:
    """Row numbers of the ``K`` nearest memories (all, or ``among``), by numpy over every vector."""
    rows = np.arange(len(data.vectors)) if among is None else among
    similarity = data.vectors[rows] @ query
    best = np.argpartition(-similarity, K)[:K] if len(rows) > K else np.arange(len(rows))
    return {int(rows[i]) for i in best}


@dataclass
class Search:
    name: str
    durations: list[float]
    recall: float | None

    @property
    def p50(self) -> float:
        return statistics.median(self.durations)

    @property
    def p99(self) -> float:
        return float(np.percentile(self.durations, 99))


@dataclass
class Result:
    backend: str
    n: int
    insert_rate: float
    first_search_ms: float
    searches: list[Search] = field(default_factory=list)

    def search(self, name: str) -> Search:
        return next(s for s in self.searches if s.name == name)


def timed(call: Callable[[int], Any], count: int) -> tuple[list[float], list[Any]]:
    durations, results = [], []
    for i in range(count):
        started = time.perf_counter()
        results.append(call(i))
        durations.append((time.perf_counter() - started) * 1000)
    return durations, results


def insert(db: Any, data: Corpus) -> tuple[float, list[uuid.UUID]]:
    ids: list[uuid.UUID] = []
    elapsed = 0.0
    for start in range(0, len(data.vectors), BATCH):
        rows = range(start, min(start + BATCH, len(data.vectors)))
        items = [
            MemoryCreate(
                content=content(i, int(data.clusters[i])),
                user_id=f"user{data.users[i]}",
                importance=0.5,
                embedding=data.vectors[i].tolist(),
                embedding_model=MODEL,
            )
            for i in rows
        ]
        started = time.perf_counter()
        ids += [memory.id for memory in db.memory.remember_many(items)]
        elapsed += time.perf_counter() - started
        if (start // BATCH) % 20 == 19:
            print(f"    {len(ids):,} memories, {len(ids) / elapsed:,.0f}/s", flush=True)
    return len(ids) / elapsed, ids


def measure(backend: str, url: str, sizes: Sizes, data: Corpus) -> Result:
    print(f"{backend}: storing {sizes.n:,} memories", flush=True)
    with agentkeep.connect_sync(url) as db:
        rate, ids = insert(db, data)
    row_of = {key: row for row, key in enumerate(ids)}
    by_user = [np.flatnonzero(data.users == user) for user in range(sizes.users)]
    queries = [q.tolist() for q in data.queries]
    with agentkeep.connect_sync(url) as db:  # a fresh store: nothing cached in this process
        started = time.perf_counter()
        db.memories.search(queries[0], k=K, embedding_model=MODEL)
        first = (time.perf_counter() - started) * 1000
        result = Result(backend, sizes.n, rate, first)

        def primitive(name: str, filtered: bool) -> None:
            def call(i: int) -> Any:
                user = f"user{data.query_users[i]}" if filtered else None
                return db.memories.search(queries[i], k=K, embedding_model=MODEL, user_id=user)

            durations, found = timed(call, sizes.queries)
            recalls = []
            for i, hits in enumerate(found):
                among = by_user[data.query_users[i]] if filtered else None
                truth = exact(data, data.queries[i], among)
                recalls.append(len({row_of[m.id] for m, _ in hits} & truth) / K)
            result.searches.append(Search(name, durations, statistics.mean(recalls)))

        def recall(name: str, filtered: bool) -> None:
            def call(i: int) -> Any:
                return db.memory.recall(
                    question(int(data.query_clusters[i])),
                    embedding=queries[i],
                    embedding_model=MODEL,
                    k=K,
                    user_id=f"user{data.query_users[i]}" if filtered else None,
                    count_access=False,
                )

            durations, _ = timed(call, sizes.queries)
            result.searches.append(Search(name, durations, None))

        primitive("db.memories.search", filtered=False)
        if backend == "SQLite":  # before the in-process matrix: every vector read per search
            durations, _ = timed(
                lambda i: db.run(
                    lambda uow: uow.memories.search(queries[i], k=K, embedding_model=MODEL)
                ),
                TABLE_READS,
            )
            result.searches.append(Search(TABLE_PATH, durations, None))
            result.searches.append(Search(FLOOR, floor(data, sizes.queries), None))
        primitive(f"db.memories.search, one user of {sizes.users}", filtered=True)
        recall("db.memory.recall with text", filtered=False)
        recall(f"db.memory.recall with text, one user of {sizes.users}", filtered=True)

        def listing(name: str, filtered: bool) -> None:
            def call(i: int) -> Any:
                user = f"user{data.query_users[i]}" if filtered else None
                return db.memory.list(user_id=user, limit=LIST_PAGE)

            durations, pages = timed(call, sizes.queries)
            assert all(len(page.items) == LIST_PAGE for page in pages)
            result.searches.append(Search(name, durations, None))

        listing(f"db.memory.list, newest first, a page of {LIST_PAGE}", filtered=False)
        listing(f"db.memory.list, one user of {sizes.users}, a page of {LIST_PAGE}", filtered=True)
    for search in result.searches:
        found = "" if search.recall is None else f"  recall@10 {search.recall:.3f}"
        print(f"  {search.name:<46} p50 {search.p50:7.2f} ms  p99 {search.p99:7.2f} ms{found}")
    return result


def floor(data: Corpus, count: int) -> list[float]:
    """Per-query milliseconds of the least an exact search costs in this process: one
    matrix-vector product over every vector and the ``K`` best, on the machine as loaded now."""
    durations = []
    for i in range(count):
        started = time.perf_counter()
        similarity = data.vectors @ data.queries[i]
        np.argpartition(-similarity, K)[:K]
        durations.append((time.perf_counter() - started) * 1000)
    return durations


def embedding_time() -> float:
    """Milliseconds the built-in hash embedder takes for 1,000 texts it has not seen."""
    embedder = HashEmbedder(DIMENSION)
    texts = [content(i, i % 997) + f" token{i}" for i in range(1000)]
    started = time.perf_counter()
    embedder.embed(texts)
    return (time.perf_counter() - started) * 1000


def run(sizes: Sizes) -> tuple[list[Result], float]:
    data = corpus(sizes)
    hashing = embedding_time()
    results = on_both_backends(lambda backend, url: measure(backend, url, sizes, data), "akmem")
    return results, hashing


def checks(result: Result) -> list[tuple[str, bool]]:
    primitive = [s for s in result.searches if s.recall is not None]
    if result.backend == "PostgreSQL":
        fast = [
            (f"{s.name}: p50 < {POSTGRES_P50_MS:g} ms", s.p50 < POSTGRES_P50_MS) for s in primitive
        ]
        found = [
            (f"{s.name}: recall@10 ≥ {MIN_RECALL}", (s.recall or 0) >= MIN_RECALL)
            for s in primitive
        ]
        return fast + found
    return [(f"{s.name}: p50 < {SQLITE_P50_MS:g} ms", s.p50 < SQLITE_P50_MS) for s in primitive]


def render(results: list[Result], hashing: float, sizes: Sizes, command: str) -> str:
    lines = [
        "## Memory search",
        "",
        f"`{command}` on {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs: {sizes.n:,} memories of {DIMENSION} dimensions "
        f"({sizes.clusters:,} gaussian clusters, normalised), {sizes.users} users, "
        f"{sizes.queries} queries per row, k = {K}. SQLite searches exactly (numpy over an "
        "in-process float32 matrix of the model's vectors, kept in step with every writer); "
        "PostgreSQL through the model's HNSW index (pgvector). The machine is shared: latencies "
        "are indications, recall is exact.",
        "",
        "| backend | workload | p50 (ms) | p99 (ms) | recall@10 |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for result in results:
        lines.append(
            f"| {result.backend} | insert, batches of {BATCH:,} with embeddings given | "
            f"{result.insert_rate:,.0f} memories/s | | |"
        )
        lines.append(
            f"| {result.backend} | first search after opening the store | "
            f"{result.first_search_ms:.1f} | | |"
        )
        for s in result.searches:
            recall = "" if s.recall is None else f"{s.recall:.3f}"
            lines.append(f"| {result.backend} | {s.name} | {s.p50:.2f} | {s.p99:.2f} | {recall} |")
    lines += [
        "",
        f"The built-in `hash` embedder takes {hashing:.0f} ms for 1,000 short texts (not included "
        "in the insert rate above).",
        "",
        "Targets:",
        "",
    ]
    for result in results:
        for target, met in checks(result):
            lines.append(f"- {result.backend}, {target}: {'met' if met else '**missed**'}")
    lines += ["", f"![memory search latency](img/{IMAGE.name})"]
    return "\n".join(lines)


def svg(results: list[Result]) -> str:
    """p50 and p99 bars per backend and workload, drawn by hand (no plotting dependency)."""
    rows = [(r.backend, s) for r in results for s in r.searches if s.name != TABLE_PATH]
    top = max(s.p99 for _, s in rows) * 1.1
    width, left, bar, gap = 900, 380, 11, 12
    height = 60 + len(rows) * (2 * bar + gap)
    scale = (width - left - 90) / top
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">'
        f"Memory search, k = {K}, {results[0].n:,} memories: p50 (dark) and p99 (light), ms</text>",
    ]
    y = 40
    for backend, search in rows:
        colour = "#1f77b4" if backend == "SQLite" else "#2ca02c"
        light = "#9ecae1" if backend == "SQLite" else "#a1d99b"
        parts.append(
            f'<text x="{left - 8}" y="{y + bar + 4}" text-anchor="end">{backend}: '
            f"{search.name}</text>"
        )
        for value, fill, dy in ((search.p50, colour, 0), (search.p99, light, bar)):
            w = max(value * scale, 1)
            parts.append(
                f'<rect x="{left}" y="{y + dy}" width="{w:.1f}" height="{bar - 1}" fill="{fill}"/>'
            )
            parts.append(f'<text x="{left + w + 4:.1f}" y="{y + dy + bar - 2}">{value:.2f}</text>')
        y += 2 * bar + gap
    parts.append("</svg>")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=None, help="memories (default 100,000)")
    parser.add_argument("--quick", action="store_true", help="3,000 memories; print only")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else Sizes()
    if args.n is not None:
        sizes = Sizes(n=args.n, clusters=min(1000, max(10, args.n // 50)), users=sizes.users,
                      queries=sizes.queries)  # fmt: skip
    results, hashing = run(sizes)
    command = "python -m bench.memory" + (f" --n {args.n}" if args.n else "")
    text = render(results, hashing, sizes, command + (" --quick" if args.quick else ""))
    print(text)
    if not args.quick:
        IMAGE.write_text(svg(results))
        print(f"written to {write_section('memory', text)} and {IMAGE}")


if __name__ == "__main__":
    main()
