"""End to end: ``agentkeep serve`` as a real process on a free port, driven over HTTP.

Each test starts ``python -m agentkeep serve`` on a database of its own (a new SQLite file, a new
PostgreSQL database that the server's own migration step fills), waits for ``/health``, checks
what the command printed, works through the API as a client would, and stops the server with a
signal, expecting a graceful shutdown and exit status 0.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import pytest
from sqlalchemy.engine import make_url

from agentkeep import Settings, __version__, connect_sync
from agentkeep.config import mask_url
from agentkeep.db import migrate
from agentkeep.db.service import DatabaseService
from conftest import fresh_postgres_database

pytestmark = pytest.mark.slow

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def agentkeep_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """The environment without the shell's ``AGENTKEEP_*`` variables, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTKEEP_")}
    env.update({f"AGENTKEEP_{name.upper()}": value for name, value in settings.items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env


def at_head(database_url: str) -> bool:
    """Whether the database is migrated to the newest revision and matches the models."""
    service = DatabaseService(Settings(database_url=database_url, auto_migrate=False))
    try:
        return migrate.current(service) == migrate.head() and migrate.check(service) == []
    finally:
        service.dispose()


@dataclass
class Server:
    process: subprocess.Popen[str]
    base: str
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    readers: list[threading.Thread] = field(default_factory=list)

    def client(self, key: str | None = None) -> httpx.Client:
        """A client of this server (never through a proxy the environment names)."""
        headers = {} if key is None else {"Authorization": f"Bearer {key}"}
        return httpx.Client(base_url=self.base, headers=headers, timeout=10, trust_env=False)

    def output(self) -> str:
        return "".join(self.stdout) + "".join(self.stderr)

    def wait_until_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._join_readers()
                pytest.fail(f"serve exited with {self.process.returncode}:\n{self.output()}")
            try:
                health = httpx.get(f"{self.base}/health", timeout=1, trust_env=False)
                if health.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        pytest.fail(f"the server did not answer /health in {START_TIMEOUT} s:\n{self.output()}")

    def stop(self, signum: signal.Signals) -> int:
        """Send ``signum``; the exit status once the process has ended."""
        self.process.send_signal(signum)
        try:
            status = self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"the server did not stop on {signum.name}:\n{self.output()}")
        self._join_readers()
        return status

    def _join_readers(self) -> None:
        for thread in self.readers:
            thread.join(timeout=5)


def _collect(stream: IO[str], lines: list[str]) -> None:
    for line in stream:  # read continuously, so a full pipe never blocks the server
        lines.append(line)


@contextmanager
def serving(cwd: Path, env: dict[str, str], *args: str) -> Iterator[Server]:
    """``agentkeep serve`` on a free loopback port, healthy; killed if a test leaves it running."""
    port = free_port()
    command = [sys.executable, "-m", "agentkeep", "serve", "--port", str(port), *args]
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    server = Server(process, f"http://127.0.0.1:{port}")
    assert process.stdout is not None
    assert process.stderr is not None
    for stream, lines in ((process.stdout, server.stdout), (process.stderr, server.stderr)):
        reader = threading.Thread(target=_collect, args=(stream, lines), daemon=True)
        reader.start()
        server.readers.append(reader)
    try:
        server.wait_until_healthy()
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def assert_announced(server: Server, database: str) -> None:
    """The four lines ``serve`` prints before uvicorn starts."""
    printed = [line.rstrip("\n") for line in server.stdout]
    assert printed[:4] == [
        f"agentkeep {__version__} listening on {server.base}",
        f"database: {database}",
        f"API docs: {server.base}/docs",
        "embedder: hash-384 (built in, lexical: matches shared words, not meaning)",
    ], server.output()


def assert_stops_cleanly(server: Server, signum: signal.Signals) -> None:
    assert server.stop(signum) == 0, server.output()
    assert "Application shutdown complete" in server.output()
    assert "Traceback" not in server.output()


def drive_the_api(client: httpx.Client) -> None:
    """A client's first session: an agent, a conversation, messages, pages, the docs."""
    agent = client.post("/api/v1/agents", json={"name": "e2e-agent", "model": "some-model"})
    assert agent.status_code == 201, agent.text
    started = client.post(
        "/api/v1/conversations/start",
        json={
            "user_id": "u1",
            "agent_id": agent.json()["id"],
            "message": {"role": "user", "content": "hello"},
        },
    )
    assert started.status_code == 201, started.text
    conversation_id = started.json()["conversation"]["id"]
    assert started.json()["message"]["seq"] == 1
    messages = f"/api/v1/conversations/{conversation_id}/messages"
    append = f"/api/v1/conversations/{conversation_id}/message"
    for n in range(2, 6):
        body = {"role": "assistant" if n % 2 else "user", "content": f"message {n}"}
        assert client.post(append, json=body).json()["seq"] == n
    retried = {"role": "user", "content": "sent twice", "client_id": "turn-6"}
    first, again = client.post(append, json=retried), client.post(append, json=retried)
    assert first.status_code == 201, first.text
    assert again.status_code == 201, again.text
    assert again.json()["id"] == first.json()["id"]
    assert first.json()["seq"] == 6
    _page_through(client, messages)
    _docs_are_served(client)


def _page_through(client: httpx.Client, messages: str) -> None:
    newest = client.get(messages, params={"limit": 4}).json()
    assert [m["seq"] for m in newest["items"]] == [3, 4, 5, 6]
    older = client.get(messages, params={"limit": 4, "before": newest["next_cursor"]}).json()
    assert [m["content"] for m in older["items"]] == ["hello", "message 2"]
    assert older["next_cursor"] is None


def _docs_are_served(client: httpx.Client) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    schema = client.get("/openapi.json")
    assert schema.status_code == 200
    assert "/api/v1/conversations/start" in schema.json()["paths"]


def test_serve_on_a_new_sqlite_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = agentkeep_env(tmp_path, data_dir=str(data))
    with serving(tmp_path, env) as server:
        assert_announced(server, f"sqlite+pysqlite:///{data / 'agentkeep.db'}")
        with server.client() as client:
            drive_the_api(client)
        assert_stops_cleanly(server, signal.SIGINT)
    assert at_head(f"sqlite:///{data / 'agentkeep.db'}")


def test_serve_with_two_workers_shares_one_sqlite_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = agentkeep_env(tmp_path, data_dir=str(data))
    with serving(tmp_path, env, "--workers", "2") as server:
        assert_announced(server, f"sqlite+pysqlite:///{data / 'agentkeep.db'}")
        with server.client() as client:
            drive_the_api(client)
            started = client.post("/api/v1/conversations/start", json={"user_id": "u2"})
            conversation = started.json()["conversation"]["id"]

        def append(n: int) -> int:  # a new connection each: the kernel spreads them
            with server.client() as one:
                response = one.post(
                    f"/api/v1/conversations/{conversation}/message",
                    json={"role": "user", "content": f"message {n}"},
                )
                assert response.status_code == 201, response.text
                seq: int = response.json()["seq"]
                return seq

        with ThreadPoolExecutor(8) as pool:
            seqs = sorted(pool.map(append, range(40)))
        assert seqs == list(range(1, 41))  # writes from both processes, none lost or doubled
        with server.client() as client:
            assert client.get(f"/api/v1/conversations/{conversation}").json()["message_count"] == 40
        assert server.output().count("Application startup complete") == 2
        pids = set(re.findall(r"Started server process \[(\d+)\]", server.output()))
        assert len(pids) == 2
        assert_stops_cleanly(server, signal.SIGTERM)
        assert server.output().count("Application shutdown complete") == 2
    assert at_head(f"sqlite:///{data / 'agentkeep.db'}")


@pytest.mark.postgres
def test_serve_migrates_a_new_postgresql_database_and_asks_for_keys(
    tmp_path: Path, postgres_server_url: str
) -> None:
    url = fresh_postgres_database(postgres_server_url, "agentkeep_e2e")
    env = agentkeep_env(tmp_path, database_url=url, api_keys="configured-key")
    with serving(tmp_path, env) as server:  # its own step migrated the empty database
        assert_announced(server, mask_url(make_url(url)))
        assert at_head(url)
        # a key made outside the server, as `agentkeep keys create` does: the server reads the table
        with connect_sync(Settings(database_url=url), upgrade=False) as db:
            _, stored_key = db.api_keys.create("e2e")
        with server.client() as anonymous:
            _assert_closed(anonymous)
        with server.client("configured-key") as client:
            assert client.get("/api/v1/stats").status_code == 200
        with server.client(stored_key) as client:
            drive_the_api(client)
        assert_stops_cleanly(server, signal.SIGTERM)
    assert at_head(url)


def _assert_closed(client: httpx.Client) -> None:
    refused = client.get("/api/v1/agents")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    assert client.get("/health").status_code == 200


PROJECT = Path(__file__).resolve().parents[2] / "examples" / "project.json"


def test_serve_without_a_database_runs_from_the_project_file_alone(tmp_path: Path) -> None:
    env = agentkeep_env(tmp_path, enable_db="false")
    notice = f"nothing is kept: the store is in memory, loaded from {PROJECT}"
    for _ in range(2):  # the second run starts afresh
        with serving(tmp_path, env, "--config", str(PROJECT)) as server:
            assert_announced(server, "memory")
            assert notice in server.stdout[4], server.output()
            with server.client() as client:
                agents = {a["name"]: a for a in client.get("/api/v1/agents").json()["items"]}
                assert set(agents) == {"bookkeeper", "helper"}
                # a restart forgot the conversation the first run had
                assert client.get("/api/v1/conversations").json()["items"] == []
                turn = client.post(
                    "/api/v1/streaming/start",
                    json={"agent_id": agents["helper"]["id"], "user_id": "u1", "content": "hi"},
                )
                assert turn.status_code == 200, turn.text
                assert "event: message_end" in turn.text
                [conversation] = client.get("/api/v1/conversations").json()["items"]
                assert conversation["message_count"] == 2
                home = client.get("/")
                assert notice in home.text
            assert_stops_cleanly(server, signal.SIGTERM)
    assert not (tmp_path / ".agentkeep").exists()  # nothing was written to disk
