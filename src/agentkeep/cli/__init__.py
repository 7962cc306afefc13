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

__all__ = ["app"]
