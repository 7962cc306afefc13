"""Embedders: texts per second for each built-in embedder, and what the model costs in memory.

    python -m bench.embedders          # full run: the "embedders" section of docs/benchmarks.md
    python -m bench.embedders --quick  # fewer texts, prints only (a smoke run)

In this process: ``hash`` on 1,000 short sentences it has never seen (its token cache cold) and
then again (warm), and on one megabyte of prose; ``minilm`` (when the ``embeddings`` extra is
installed) its load time, its resident memory (before and after loading, read from
``/proc/self/status``) and the same 1,000 sentences in batches of ``embedding_batch_size``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

from agentkeep import Settings
from agentkeep.memory import embedder_from
from agentkeep.memory.hashing import HashEmbedder
from agentkeep.memory.minilm import missing_packages
from bench.report import write_section

SUBJECTS = ["coffee", "the quarterly report", "my daughter's school", "a flight to Tokyo"]


def sentences(count: int, salt: str) -> list[str]:
    """Short distinct sentences (about ten words) with a vocabulary that keeps growing."""
    return [
        f"On day {i} the user {salt} mentioned {SUBJECTS[i % 4]} and item{i * 7919 % count}x"
        for i in range(count)
    ]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rate(embed: Callable[[list[str]], object], texts: list[str]) -> float:
    started = time.perf_counter()
    embed(texts)
    return len(texts) / (time.perf_counter() - started)


def main(quick: bool) -> str:
    count = 200 if quick else 1000
    settings = Settings()
    hashed = HashEmbedder(settings.embedding_dimension)
    cold = rate(hashed.embed, sentences(count, "cold"))
    warm = rate(hashed.embed, sentences(count, "cold"))
    prose = ("I bought coffee for 300 roubles and tea for 200. " * 21_000)[:1_000_000]
    started = time.perf_counter()
    hashed.embed([prose])
    megabyte = (time.perf_counter() - started) * 1000
    rows = [
        f"| hash-{hashed.dimension}, {count} short sentences, cold cache | {cold:,.0f} texts/s |",
        f"| hash-{hashed.dimension}, the same again (warm) | {warm:,.0f} texts/s |",
        f"| hash-{hashed.dimension}, one 1 MB text | {megabyte:.0f} ms |",
    ]
    if missing_packages():
        rows.append("| minilm | not measured: the embeddings extra is not installed |")
    else:
        minilm = embedder_from(Settings(embedder="minilm"))
        before = rss_mb()
        started = time.perf_counter()
        minilm.embed(["load"])
        load = time.perf_counter() - started
        after = rss_mb()
        texts = sentences(count, "semantic")
        rows += [
            f"| all-MiniLM-L6-v2, load (import torch included) | {load:.1f} s |",
            f"| all-MiniLM-L6-v2, resident memory before / after loading | {before:.0f} MB / "
            f"{after:.0f} MB |",
            f"| all-MiniLM-L6-v2, {count} short sentences, batches of "
            f"{settings.embedding_batch_size} | {rate(minilm.embed, texts):,.0f} texts/s |",
        ]
    return "\n".join(
        [
            "## Embedders",
            "",
            f"`python -m bench.embedders` on {platform.python_implementation()} "
            f"{platform.python_version()}, {os.cpu_count()} CPUs.",
            "",
            "| measurement | result |",
            "| --- | --- |",
            *rows,
        ]
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer texts; print only")
    args = parser.parse_args()
    text = main(args.quick)
    print(text)
    if not args.quick:
        print(f"written to {write_section('embedders', text)}")
