"""``agentkeep serve``: run the HTTP API with uvicorn.

It says where it listens, which database it uses and which embedder computes memories'
embeddings. Before uvicorn starts, the database is reached and migrated (unless
``AGENTKEEP_AUTO_MIGRATE=false``: production migrates as a step of its own), so a bad URL, an
unreachable server or a failed migration ends the command with the CLI's exit codes and a one-line
reason, not a traceback from inside the server. With ``--config FILE`` (or
``AGENTKEEP_CONFIG_FILE``) a project file is then synced into the store (``cli/config.py``); a bad
one stops the command before the server starts. The in-memory store (``AGENTKEEP_ENABLE_DB=false``)
lives inside the server, so there the server syncs the file into it as it starts, and the command
says that nothing is kept.

Without API keys (``AGENTKEEP_API_KEYS`` or stored ones) the API is open to whoever can reach it,
so it only listens on a loopback address unless told otherwise (``--allow-unauthenticated`` or
``AGENTKEEP_ALLOW_UNAUTHENTICATED=true``, e.g. behind a proxy that checks access). The check is
made at start; such a server then keeps insisting on a key (``require_api_keys``), so revoking
the last stored key later closes the API rather than opening it.

``--workers N`` (or ``AGENTKEEP_WORKERS``) serves from N processes on one port (uvicorn's
workers), each with its own connection pool, migrated once here before they start. A SQLite file
works across processes: each process serialises its own writes, and SQLite's busy timeout
arbitrates between processes. The in-memory store lives inside one process and cannot be shared, so
it refuses more than one worker (as ``--reload`` does: the reloader runs one process).

uvicorn shuts down gracefully on SIGINT or SIGTERM; either ends the command with exit status 0.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import signal
import socket
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from agentkeep import __version__
from agentkeep.cli.common import errors, load_settings, refuse, with_service
from agentkeep.cli.config import load as load_project
from agentkeep.cli.config import run_sync, sync_at_start
from agentkeep.config import Settings
from agentkeep.db import migrate
from agentkeep.db.service import DatabaseService
from agentkeep.memory.embedders import EmbedderError, describe, embedder_from
from agentkeep.repositories.base import Sync
from agentkeep.repositories.facade import DatabaseManager

APP_FACTORY = "agentkeep.api.app:create_app"


def serve(
    host: Annotated[
        str | None,
        typer.Option(help="address to listen on (default: AGENTKEEP_HOST, else 127.0.0.1)"),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="port (default: AGENTKEEP_PORT, else 8000)"),
    ] = None,
    reload: Annotated[
        bool, typer.Option("--reload", help="restart when the code changes (development)")
    ] = False,
    allow_unauthenticated: Annotated[
        bool,
        typer.Option(
            "--allow-unauthenticated",
            help="listen on a non-loopback address even though no API key exists",
        ),
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", dir_okay=False, help="a project file to sync into the store at start"
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            envvar="AGENTKEEP_WORKERS",
            help="server processes sharing the port (not with --reload, nor the in-memory store)",
        ),
    ] = 1,
) -> None:
    """Run the HTTP API (migrating the database first unless AGENTKEEP_AUTO_MIGRATE=false)."""
    settings = load_settings()
    if workers > 1 and reload:
        refuse("--reload runs one server process: pass --workers 1 (or leave it out)")
    config = config or settings.config_file
    project = None if config is None else load_project(config)
    host = host or settings.host
    port = settings.port if port is None else port
    open_to_all = allow_unauthenticated or settings.allow_unauthenticated

    def prepare(service: DatabaseService) -> bool:
        """Ready the store; whether it is the in-memory one."""
        if workers > 1 and service.is_memory:
            refuse(
                f"--workers {workers}: the in-memory store lives inside one server process and "
                "cannot be shared; serve it with one worker, or set AGENTKEEP_DATABASE_URL (or "
                "AGENTKEEP_ENABLE_DB=true for the SQLite file) to serve from several"
            )
        _prepare(service, host, open_to_all)
        if project is None:
            return service.is_memory
        if service.is_memory:  # a trial run on this throwaway store: a bad file stops us here
            migrate.upgrade(service)
            trial = DatabaseManager(service, Sync)
            run_sync(trial, project, str(config), prune=False, dry_run=True)
        else:
            sync_at_start(service, project, str(config))
        return service.is_memory

    in_memory = with_service(prepare, settings)
    check_free(host, port)
    base = f"http://{_netloc(host, port)}"
    typer.echo(f"agentkeep {__version__} listening on {base}")
    typer.echo(f"database: {settings.masked_url}")
    typer.echo(f"API docs: {base}/docs")
    _say_embedder(settings)
    insist = not (open_to_all or _is_loopback(host))
    # the in-memory store lives in the server, which fills it from the file as it starts; a
    # database was synced above
    update = {"require_api_keys": insist, "config_file": config if in_memory else None}
    settings = settings.model_copy(update=update)
    if settings.memory_notice:
        typer.echo(settings.memory_notice)
    _run(settings, host, port, reload=reload, workers=workers)


def _prepare(service: DatabaseService, host: str, open_to_all: bool) -> None:
    """Migrate (or warn that the database is behind), then refuse an open non-loopback bind."""
    settings = service.settings
    if not service.is_memory:  # the in-memory store lives in the server: it migrates itself
        if settings.auto_migrate:
            migrate.upgrade(service)
        elif migrate.pending(service):  # also proves the database answers before uvicorn starts
            errors.print(
                f"[yellow]warning:[/] the database is at {migrate.current(service) or 'empty'}; "
                f"this version's newest revision is {migrate.head()} (`agentkeep db upgrade`)"
            )
    if open_to_all or _is_loopback(host) or settings.api_keys:
        return
    if service.is_memory or not DatabaseManager(service, Sync).api_keys.active_hashes():
        refuse(
            f"refusing to listen on {host} without API keys: anyone who can reach it could read "
            "and change everything. Make a key (`agentkeep keys create`), set AGENTKEEP_API_KEYS, "
            "or pass --allow-unauthenticated (AGENTKEEP_ALLOW_UNAUTHENTICATED=true) when "
            "something in front of the server checks access."
        )


def _say_embedder(settings: Settings) -> None:
    """Which embedder computes memories' embeddings (or why none can: memory routes then
    answer 503 until it is fixed; everything else works)."""
    try:
        typer.echo(f"embedder: {describe(embedder_from(settings))}")
    except EmbedderError as exc:
        errors.print(f"[yellow]warning:[/] embedder unavailable: {escape(exc.message)}")


def check_free(host: str, port: int) -> None:
    """Refuse (exit 2) before saying "listening" when ``host:port`` cannot be listened on: the
    port is taken, or the address is not this machine's."""
    try:
        infos = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        refuse(f"cannot listen on {host}:{port}: {exc.strerror}")
    except UnicodeError:  # "a..b", a label over 63 characters, bytes that are not text
        refuse(f"cannot listen on {host!r}: --host is not a valid host name or address")
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            taken = exc.errno == errno.EADDRINUSE
            hint = " (another server uses it: pass --port or set AGENTKEEP_PORT)" if taken else ""
            refuse(f"cannot listen on {_netloc(host, port)}: {exc.strerror}{hint}")


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def _export(settings: Settings) -> None:
    """Hand the settings this command decided to server processes that build the app anew from
    the environment (the reloader's child, the workers)."""
    if settings.require_api_keys:
        os.environ["AGENTKEEP_REQUIRE_API_KEYS"] = "true"
    if settings.config_file is None:
        os.environ.pop("AGENTKEEP_CONFIG_FILE", None)
    else:
        os.environ["AGENTKEEP_CONFIG_FILE"] = str(settings.config_file)


def _run(settings: Settings, host: str, port: int, *, reload: bool, workers: int = 1) -> None:
    # Imported here: the API (FastAPI, uvicorn) adds ~0.4 s that `db` and `keys` need not pay.
    import uvicorn  # noqa: PLC0415

    from agentkeep.api.app import create_app  # noqa: PLC0415

    level = settings.log_level.lower()
    # one access-log line per request is logged at INFO: below that level it is never shown, so
    # the server does not build it
    access_log = logging.getLevelName(settings.log_level.upper()) in (logging.DEBUG, logging.INFO)
    # After a graceful shutdown uvicorn raises the signal that stopped it again; SIGTERM then
    # arrives as KeyboardInterrupt (as SIGINT does), which uvicorn.run takes as a normal end.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        if reload:  # the reloader imports the app anew in a child: settings from the environment
            _export(settings)
            uvicorn.run(
                APP_FACTORY, factory=True, reload=True, host=host, port=port, log_level=level
            )
        elif workers > 1:  # each worker builds the app from the environment; migrated above
            _export(settings)
            os.environ["AGENTKEEP_AUTO_MIGRATE"] = "false"
            uvicorn.run(
                APP_FACTORY,
                factory=True,
                workers=workers,
                host=host,
                port=port,
                log_level=level,
                access_log=access_log,
            )
        else:  # already migrated above: the app need not run Alembic again
            app = create_app(settings.model_copy(update={"auto_migrate": False}))
            uvicorn.run(app, host=host, port=port, log_level=level, access_log=access_log)
    except KeyboardInterrupt:  # stopped before uvicorn took the signals over
        pass
    except SystemExit as exc:
        if exc.code not in (0, None):  # uvicorn could not start: it logged why
            errors.print(f"[red]error:[/] the server did not start on {escape(host)}:{port}")
            raise typer.Exit(1) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
