"""``agentkeep memory prune|reindex|models|search``: the upkeep of long-term memory.

``prune`` deletes the memories whose lasting score (importance and recency) fell below a
threshold, or that are older than an age; it reads them in batches, each batch's deletions
committed on their own, so an interrupted prune keeps what it did. Unless ``--yes`` (or
``--dry-run``) it first counts what it would delete and asks.

``reindex`` embeds again, with the configured embedder, every memory it did not embed (made by
another model, or with no embedding): after changing ``AGENTKEEP_EMBEDDER``. Each batch commits on
its own: an interrupted reindex (Ctrl-C) is finished by running it again.

``models`` lists the embedding models whose vectors the store holds; ``search`` shows what a
recall would return, with every part of each score (it counts no access).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

import typer
from rich import box
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from agentkeep.cli.common import console, refuse, with_store
from agentkeep.memory.embedders import describe
from agentkeep.models.memory import MemoryHit
from agentkeep.repositories.base import Sync
from agentkeep.repositories.facade import DatabaseManager

memory_app = typer.Typer(
    help="Long-term memory upkeep: prune, re-embed, list models, search.", no_args_is_help=True
)

AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
INTERRUPTED = 130
"""The exit code of a command stopped by Ctrl-C (128 + SIGINT), as shells report it."""


def parse_age(text: str, option: str = "--older-than") -> timedelta:
    """``30d``, ``12h``, ``90m``, ``45s`` or ``2w`` as a time span; anything else exits 2."""
    found = AGE.match(text)
    if found is None:
        refuse(f"{option} must be an age like 30d, 12h, 90m, 45s or 2w, not {text!r}")
    amount, unit = float(found.group(1)), found.group(2).lower()
    if amount <= 0:
        refuse(f"{option} must be a positive age, not {text!r}")
    try:
        return timedelta(**{UNITS[unit]: amount})
    except OverflowError:
        refuse(f"{option} is too long an age: {text!r}")


def _total(db: DatabaseManager[Sync]) -> int:
    """Every memory: those the embedder did not embed and those it did."""
    embedder = db.memory.embedder.name
    embedded = next((m.memories for m in db.memories.models() if m.name == embedder), 0)
    return db.memory.remaining_to_reindex() + embedded


def _progress(label: str) -> Progress:
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        console=console,
    )


@memory_app.command()
def prune(
    below: Annotated[
        float | None,
        typer.Option(
            help="delete memories whose lasting score (importance and recency, weighted as in "
            "a search) is below this (0 to 1)",
            show_default=False,
        ),
    ] = None,
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            help="delete memories made longer ago than this: 30d, 12h, 90m, 45s, 2w",
            show_default=False,
        ),
    ] = None,
    expired: Annotated[
        bool,
        typer.Option(
            "--expired", help="delete memories whose expiry has passed (never recalled again)"
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="only count what would be deleted")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="delete without asking")] = False,
) -> None:
    """Delete memories scoring below --below, older than --older-than, or expired (--expired);
    any one condition given is enough."""
    if below is None and older_than is None and not expired:
        refuse("say what to prune: --below SCORE, --older-than AGE (e.g. 30d) and/or --expired")
    if below is not None and not 0 <= below <= 1:  # before anything is counted
        refuse("--below must be a score between 0 and 1")
    age = None if older_than is None else parse_age(older_than)

    def sweep(db: DatabaseManager[Sync], *, dry: bool, total: int, label: str) -> tuple[int, int]:
        seen = gone = 0
        verb = "would delete" if dry else "deleted"
        with _progress(label) as progress:
            task = progress.add_task(label, total=total, note="")

            def advance(batch: int, deleted: int) -> None:
                nonlocal seen, gone
                seen, gone = seen + batch, gone + deleted
                # memories written since the count make the total grow
                progress.update(task, completed=seen, total=max(total, seen), note=f"{verb} {gone}")

            count = db.memory.prune(
                below=below, older_than=age, expired=expired, dry_run=dry, on_batch=advance
            )
            progress.update(task, note=f"{verb} {count}")
        return seen, count

    def run(db: DatabaseManager[Sync]) -> None:
        total = _total(db)
        if dry_run or not yes:
            seen, doomed = sweep(db, dry=True, total=total, label="counting")
            if dry_run:
                console.print(
                    f"seen {seen} memories; would delete {doomed} (dry run: nothing deleted)"
                )
                return
            if doomed == 0:
                console.print(f"seen {seen} memories; none to delete")
                return
            typer.confirm(f"delete {doomed} of {seen} memories?", abort=True)
        seen, deleted = sweep(db, dry=False, total=total, label="pruning")
        console.print(f"seen {seen} memories; deleted {deleted}")

    with_store(run, must_exist=True)


@memory_app.command()
def reindex(
    batch_size: Annotated[
        int, typer.Option(min=1, max=10_000, help="memories embedded and committed together")
    ] = 64,
) -> None:
    """Embed again, with the configured embedder, every memory it did not embed. Interrupted,
    it keeps what it did: run it again to finish."""

    def run(db: DatabaseManager[Sync]) -> None:
        embedder = db.memory.embedder
        remaining = db.memory.remaining_to_reindex()
        if remaining == 0:
            console.print(f"every memory is embedded by {escape(embedder.name)}: nothing to do")
            return
        done = 0
        progress = _progress(f"re-embedding with {escape(embedder.name)}")
        with progress:
            task: TaskID = progress.add_task("reindex", total=remaining, note="")

            def advance(count: int) -> None:
                nonlocal done
                done += count
                # memories written meanwhile by another model make the total grow
                progress.update(task, completed=done, total=max(remaining, done))

            try:
                db.memory.reindex(batch_size=batch_size, on_batch=advance)
            except KeyboardInterrupt:
                progress.stop()
                console.print(
                    f"interrupted: {done} memories re-embedded and kept, "
                    f"{db.memory.remaining_to_reindex()} left; run it again to finish"
                )
                raise typer.Exit(INTERRUPTED) from None
        console.print(f"re-embedded {done} memories with {escape(embedder.name)}")

    with_store(run, must_exist=True)


@memory_app.command()
def models() -> None:
    """The embedding models whose vectors the store holds, and the configured embedder."""

    def run(db: DatabaseManager[Sync]) -> None:
        embedder = db.memory.embedder
        known = db.memories.models()
        remaining = db.memory.remaining_to_reindex()
        if known:
            table = Table(box=box.SIMPLE_HEAD, show_edge=False)
            table.add_column("model")
            table.add_column("dimension", justify="right")
            table.add_column("memories", justify="right")
            table.add_column("configured")
            for model in known:
                table.add_row(
                    escape(model.name),
                    str(model.dimension),
                    str(model.memories),
                    "yes" if model.name == embedder.name else "",
                )
            console.print(table)
        else:
            console.print("no embedding model yet: no memory has an embedding")
        console.print(f"configured embedder: {escape(describe(embedder))}")
        if remaining:
            console.print(
                f"{remaining} memories are not embedded by {escape(embedder.name)}: "
                "`agentkeep memory reindex` embeds them"
            )

    with_store(run, must_exist=True)


def _part(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


PARTS = (
    "rel: relevance (from sim: cosine similarity, and kw: share of the query's words), "
    "imp: importance, rec: recency"
)


def _hits_table(hits: list[MemoryHit]) -> Table:
    table = Table(
        box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1),
        caption=PARTS, caption_justify="left",
    )  # fmt: skip
    for name in ("score", "rel", "sim", "kw", "imp", "rec"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("memory (user · type), id", overflow="fold")
    for hit in hits:
        memory = hit.memory
        content = memory.content if len(memory.content) <= 200 else memory.content[:199] + "…"
        about = " · ".join(part for part in (memory.user_id, memory.memory_type) if part)
        table.add_row(
            f"{hit.score:.2f}",
            _part(hit.relevance),
            _part(hit.similarity),
            _part(hit.keyword),
            _part(hit.importance),
            _part(hit.recency),
            f"{'(' + escape(about) + ') ' if about else ''}{escape(content)}\n[dim]{memory.id}[/]",
        )
    return table


@memory_app.command()
def search(
    query: Annotated[str, typer.Argument(help="what to recall (text)")],
    user: Annotated[
        str | None, typer.Option("--user", help="only this user's memories", show_default=False)
    ] = None,
    k: Annotated[int, typer.Option("-k", "--k", help="how many memories")] = 10,
) -> None:
    """What a recall of QUERY returns, best first, with each part of the score. Looking does
    not count as an access."""
    if not query.strip():
        refuse("the query must have some text")
    hits = with_store(
        lambda db: db.memory.recall(query, user_id=user, k=k, count_access=False), must_exist=True
    )
    if not hits:
        console.print("no memory matches")
        return
    console.print(_hits_table(hits))
    console.print(f"{len(hits)} memories")
