"""The ``agentkeep`` command. No SQL here: commands call the store and print what it returns.

- ``db`` (``cli/db.py``): Alembic migrations, and ``health``;
- ``config`` (``cli/config.py``): a project file synced into the store, exported back;
- ``keys`` (``cli/keys.py``): API keys for the server, stored hashed;
- ``conversations`` (``cli/conversations.py``): abandon idle conversations, purge old ones;
- ``memory`` (``cli/memory.py``): prune and re-embed memories, list embedding models, search;
- ``serve`` (``cli/serve.py``): the HTTP API under uvicorn.

Domain errors map to exit codes (``AgentkeepError.exit_code``): 2 bad input, 3 not found,
4 conflict, 5 storage, 6 unauthorized, 7 embedder unavailable; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import inspect

import typer

from agentkeep.cli.config import config_app
from agentkeep.cli.conversations import conversations_app
from agentkeep.cli.db import db_app, health
from agentkeep.cli.keys import keys_app
from agentkeep.cli.memory import memory_app
from agentkeep.cli.serve import serve

app = typer.Typer(help="agentkeep: persistence and memory for AI agents.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(config_app, name="config")
app.add_typer(conversations_app, name="conversations")
app.add_typer(memory_app, name="memory")
app.command()(health)
app.command()(serve)


def _one_line_summaries(group: typer.Typer) -> None:
    """Give each command a summary on one line for its group's list: Typer shows a docstring's
    first paragraph there with its line breaks kept, breaking the text mid-sentence."""
    for command in group.registered_commands:
        if command.short_help is None and command.help is None and command.callback is not None:
            first = (inspect.getdoc(command.callback) or "").split("\n\n")[0]
            command.short_help = " ".join(first.split()) or None
    for sub in group.registered_groups:
        if sub.typer_instance is not None:
            _one_line_summaries(sub.typer_instance)


_one_line_summaries(app)

__all__ = ["app"]
