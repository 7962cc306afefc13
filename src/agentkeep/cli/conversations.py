"""``agentkeep conversations abandon-idle|purge``: the housekeeping of a chat-bot's conversations.

``abandon-idle`` marks abandoned every active conversation nobody has written to for a while (one
conditional update: one that gets a message meanwhile is left alone), and lists them. ``purge``
deletes the conversations in a status not updated for a while, with everything they own; it
deletes in batches, each committed on its own, so the progress bar moves batch by batch and an
interrupted purge keeps what it already did. ``--dry-run`` only counts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich import box
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agentkeep.cli.common import age, console, refuse, with_store
from agentkeep.models.conversation import Conversation
from agentkeep.models.enums import ConversationStatus
from agentkeep.repositories.base import Sync
from agentkeep.repositories.facade import DatabaseManager, Unit

conversations_app = typer.Typer(
    help="Conversation housekeeping: abandon idle ones, purge old ones.", no_args_is_help=True
)


def _when(moment: datetime | None) -> str:
    return "" if moment is None else f"{moment:%Y-%m-%d %H:%M}"


def _table(found: list[Conversation]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    table.add_column("id", no_wrap=True)
    table.add_column("user")
    table.add_column("chat")
    table.add_column("title")
    table.add_column("last message (UTC)", no_wrap=True)
    for conversation in found:
        table.add_row(
            str(conversation.id),
            escape(conversation.user_id or ""),
            escape(conversation.chat_id or ""),
            escape(conversation.title or ""),
            _when(conversation.last_message_at or conversation.created_at),
        )
    return table


@conversations_app.command("abandon-idle")
def abandon_idle(
    idle_seconds: Annotated[
        float,
        typer.Option(
            "--idle-seconds",
            help="abandon the active conversations not written to for this many seconds",
            show_default=False,
        ),
    ],
) -> None:
    """Mark abandoned every active conversation idle for --idle-seconds, and list them."""

    idle = age(idle_seconds, "--idle-seconds")

    def abandon(uow: Unit) -> list[Conversation]:
        ids = uow.abandon_idle_conversations(idle)
        return [uow.conversations.get(cid) for cid in ids]

    abandoned = with_store(lambda db: db.run(abandon), must_exist=True)
    if not abandoned:
        console.print(f"no active conversation has been idle for {idle_seconds:g} seconds")
        return
    console.print(_table(abandoned))
    console.print(f"abandoned {len(abandoned)} conversation(s) idle for {idle_seconds:g} seconds")


@conversations_app.command()
def purge(
    status: Annotated[
        str,
        typer.Option(
            help="delete the conversations in this status: active, completed or abandoned",
            show_default=False,
        ),
    ],
    older_than_seconds: Annotated[
        float,
        typer.Option(
            "--older-than-seconds",
            help="… not updated for this many seconds",
            show_default=False,
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="only count what would be deleted")
    ] = False,
    batch_size: Annotated[
        int, typer.Option(min=1, help="conversations deleted per transaction")
    ] = 500,
) -> None:
    """Delete the conversations in --status not updated for --older-than-seconds, with their
    messages, data, questions, states and memories."""
    chosen = _status(status)
    older_than = age(older_than_seconds, "--older-than-seconds")
    what = f"{chosen.value} conversation(s) not updated for {older_than_seconds:g} seconds"
    if dry_run:
        count = with_store(lambda db: db.count_purgeable(chosen, older_than), must_exist=True)
        console.print(f"would delete {count} {what} (dry run: nothing deleted)")
        return

    def run(db: DatabaseManager[Sync]) -> int:
        expected = db.count_purgeable(chosen, older_than)
        with Progress(
            TextColumn("purging"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as progress:
            task = progress.add_task("purge", total=expected)

            def advance(deleted: int) -> None:
                # a conversation that became stale since the count makes the total grow
                done = progress.tasks[0].completed + deleted
                progress.update(task, completed=done, total=max(expected, done))

            return db.purge_conversations(
                chosen, older_than, batch_size=batch_size, on_batch=advance
            )

    deleted = with_store(run, must_exist=True)
    console.print(f"deleted {deleted} {what}")


def _status(given: str) -> ConversationStatus:
    """``--status`` as a status, else exit 2 naming the choices."""
    try:
        return ConversationStatus(given)
    except ValueError:
        choices = ", ".join(status.value for status in ConversationStatus)
        refuse(f"--status must be one of {choices}, not {given!r}")
