"""``agentkeep keys create|list|revoke``: the API keys the server accepts, stored hashed.

``create`` prints the key once, alone on standard output (``KEY=$(agentkeep keys create)`` captures
just the key) and everything else on standard error. A running server notices a new or revoked
key within a few seconds (``api/auth.py``); nothing needs restarting.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from agentkeep.cli.common import console, errors, with_store
from agentkeep.models.api_keys import ApiKey
from agentkeep.repositories.api_keys import CACHE_TTL, KEY_PREFIX, MIN_PREFIX_LENGTH

keys_app = typer.Typer(help="API keys for `agentkeep serve`.", no_args_is_help=True)


def _when(moment: datetime | None) -> str:
    return "" if moment is None else f"{moment:%Y-%m-%d %H:%M}"


def _label(key: ApiKey) -> str:
    return f"{key.prefix}… ({escape(key.name)})"


@keys_app.command()
def create(
    name: Annotated[str, typer.Option(help="what the key is for (need not be unique)")] = "default",
    admin: Annotated[
        bool,
        typer.Option(
            "--admin",
            help="it may also change the whole store at once: sync or export the "
            "configuration, purge conversations",
        ),
    ] = False,
) -> None:
    """Make an API key and print it: it is shown this once and never stored."""
    key, plaintext = with_store(lambda db: db.api_keys.create(name, admin=admin))
    kind = "admin API key" if key.admin else "API key"
    errors.print(f"created {kind} {_label(key)}, id {key.id}:")
    typer.echo(plaintext)  # plain, unwrapped and alone on stdout, so scripts can capture it
    errors.print(
        "[yellow]store it now:[/] only its hash is kept, so it cannot be shown again. "
        "Send it as `Authorization: Bearer <key>`."
    )


@keys_app.command("list")
def list_keys() -> None:
    """Show every key: prefix, name, when it was made, last used and revoked."""
    keys = with_store(lambda db: db.api_keys.list(), must_exist=True)
    if not keys:
        console.print("no API keys (make one with `agentkeep keys create`)")
        return
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    table.add_column("prefix", no_wrap=True)
    table.add_column("name")
    table.add_column("admin")
    for moment in ("created (UTC)", "last used", "revoked"):
        table.add_column(moment, no_wrap=True)
    for key in keys:
        table.add_row(
            key.prefix,
            escape(key.name),
            "yes" if key.admin else "",
            _when(key.created_at),
            _when(key.last_used_at),
            _when(key.revoked_at),
            style="dim" if key.revoked_at else None,
        )
    console.print(table)


@keys_app.command()
def revoke(
    id_or_prefix: Annotated[
        str,
        typer.Argument(
            help=f"the key's id, the whole key, or its first characters (at least "
            f"{MIN_PREFIX_LENGTH}: ak_ and {MIN_PREFIX_LENGTH - len(KEY_PREFIX)} more) when no "
            "other key starts with them"
        ),
    ],
) -> None:
    """Revoke a key: servers stop accepting it within seconds."""
    key = with_store(lambda db: db.api_keys.revoke(id_or_prefix), must_exist=True)
    console.print(
        f"{_label(key)}: revoked at {_when(key.revoked_at)} UTC; "
        f"running servers stop accepting it within {CACHE_TTL:g} seconds"
    )
