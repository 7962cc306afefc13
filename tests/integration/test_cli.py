"""The ``agentkeep`` command, run in-process on the database ``AGENTKEEP_DATABASE_URL`` names.

``serve`` is run with ``uvicorn.run`` replaced by a recorder: these tests cover what happens before
the server starts (migration, the refusal to listen openly, what is printed); ``tests/e2e`` starts
the real server."""

from __future__ import annotations

import importlib
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from agentkeep import __version__
from agentkeep.cli.common import _setting_problem
from agentkeep.db import migrate
from cli_support import run, said

UNREACHABLE = "postgresql://agent:s3cret-pw@127.0.0.1:1/agentkeep"

HEAD = migrate.head()

pytestmark = pytest.mark.usefixtures("clean_environment")


class TestReadOnlyCommandsNeverCreate:
    """A command that only reads refuses a SQLite file that does not exist, as ``health`` does:
    a mistyped path must not answer "nothing found" from a database it just made."""

    @pytest.mark.parametrize(
        "args",
        [
            ["memory", "search", "hi"],
            ["memory", "models"],
            ["memory", "prune", "--below", "0.5", "--dry-run"],
            ["config", "export"],
            ["config", "diff", "project.json"],
            ["config", "sync", "project.json", "--dry-run"],
            ["keys", "list"],
            ["conversations", "purge", "--status", "completed", "--older-than-seconds", "1",
             "--dry-run"],
        ],
    )  # fmt: skip
    def test_a_missing_sqlite_file_exits_5_and_is_not_created(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, args: list[str]
    ) -> None:
        (tmp_path / "project.json").write_text('{"agents": [{"name": "a"}]}')
        target = tmp_path / "elsewhere" / "app.db"
        monkeypatch.setenv("AGENTKEEP_DATABASE_URL", f"sqlite:///{target}")
        result = run(*args)
        assert result.exit_code == 5, result.output
        assert f"no database at {target}" in said(result)
        assert not target.parent.exists()

    def test_a_command_that_writes_still_creates_the_database(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        target = tmp_path / "app.db"
        monkeypatch.setenv("AGENTKEEP_DATABASE_URL", f"sqlite:///{target}")
        assert run("keys", "create", "--name", "ops").exit_code == 0
        assert target.exists()
        assert run("keys", "list").exit_code == 0


class TestHelp:
    """Help is plain text: no reST markup, and each command's summary in its group's list is
    one paragraph (Typer keeps a docstring's line breaks there)."""

    @staticmethod
    def commands() -> Iterator[tuple[list[str], Any]]:
        import typer

        from agentkeep.cli import app

        pending: list[tuple[list[str], Any]] = [([], typer.main.get_command(app))]
        while pending:
            path, command = pending.pop()
            yield path, command
            subcommands: dict[str, Any] = getattr(command, "commands", {})  # a group's
            pending.extend(([*path, name], sub) for name, sub in subcommands.items())

    def test_no_help_shows_rest_markup_or_breaks_a_summary(self) -> None:
        seen = 0
        for path, command in self.commands():
            result = run(*path, "--help")
            assert result.exit_code == 0, (path, result.output)
            assert "``" not in result.output, (path, result.output)
            summary = command.short_help or ""
            assert "\n" not in summary, (path, summary)
            assert "``" not in summary, (path, summary)
            seen += 1
        assert seen > 15

    def test_a_group_lists_each_summary_without_a_break_mid_sentence(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("COLUMNS", "200")
        listed = run("conversations", "--help").output
        line = next(line for line in listed.splitlines() if line.strip("│ ").startswith("purge"))
        assert "with their messages, data, questions, states and memories." in line


@pytest.mark.usefixtures("database_url")
class TestDatabaseCommands:
    def test_current_on_an_empty_database_says_it_is_behind(self) -> None:
        result = run("db", "current")
        assert result.exit_code == 0
        assert f"at empty, newest {HEAD}" in said(result)
        assert "behind" in said(result)

    def test_upgrade_migrates_and_current_then_reports_the_head(self) -> None:
        upgraded = run("db", "upgrade")
        assert upgraded.exit_code == 0, upgraded.output
        assert f"empty -> {HEAD}" in said(upgraded)
        current = run("db", "current")
        assert current.exit_code == 0
        assert f"at {HEAD}, newest {HEAD} (up to date)" in said(current)

    def test_check_passes_on_a_migrated_database(self) -> None:
        assert run("db", "upgrade").exit_code == 0
        result = run("db", "check")
        assert result.exit_code == 0, result.output
        assert "schema matches the models" in said(result)

    def test_check_fails_on_an_unmigrated_database(self) -> None:
        result = run("db", "check")
        assert result.exit_code == 1
        assert "not at the newest revision" in said(result)

    def test_downgrade_to_base_then_current_says_empty(self) -> None:
        assert run("db", "upgrade").exit_code == 0
        downgraded = run("db", "downgrade", "base")
        assert downgraded.exit_code == 0, downgraded.output
        assert "now at base" in said(downgraded)
        assert "at empty" in said(run("db", "current"))
        assert run("db", "upgrade").exit_code == 0
        assert run("db", "check").exit_code == 0

    @pytest.mark.parametrize("command", ["upgrade", "downgrade"])
    def test_an_unknown_revision_is_bad_input_exit_2_naming_the_known_ones(
        self, command: str
    ) -> None:
        result = run("db", command, "no-such-revision")
        assert result.exit_code == 2
        assert "unknown revision 'no-such-revision'" in said(result)
        assert HEAD in said(result)


@pytest.mark.usefixtures("database_url")
class TestHealth:
    @pytest.fixture(autouse=True)
    def migrated(self, database_url: str) -> None:
        assert run("db", "upgrade").exit_code == 0

    def test_health_prints_a_table_of_the_connection(self) -> None:
        result = run("health")
        assert result.exit_code == 0, result.output
        assert "success" in said(result)
        assert "Database connection successful" in said(result)

    def test_health_json_is_valid_json_reporting_success(self, database_url: str) -> None:
        result = run("health", "--json")
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["status"] == "success"
        assert report["backend"] in {"sqlite", "postgresql"}
        assert report["version"].startswith(("SQLite", "PostgreSQL"))
        assert isinstance(report["latency_ms"], float)


class TestHealthNeverCreates:
    def test_no_database_here_exits_5_and_creates_nothing(self, tmp_path: Path) -> None:
        for args in (["health"], ["health", "--json"]):
            result = run(*args)
            assert result.exit_code == 5, result.output
            assert "no database at" in said(result)
        assert not (tmp_path / ".agentkeep").exists()
        assert list(tmp_path.iterdir()) == []

    def test_a_named_file_that_does_not_exist_is_not_created(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        target = tmp_path / "elsewhere" / "app.db"
        monkeypatch.setenv("AGENTKEEP_DATABASE_URL", f"sqlite:///{target}")
        report = json.loads(run("health", "--json").stdout)
        assert report["status"] == "error"
        assert str(target) in report["message"]
        assert not target.parent.exists()

    def test_an_empty_database_says_its_schema_is_missing(self, database_url: str) -> None:
        if database_url.startswith("sqlite"):
            Path(database_url.removeprefix("sqlite:///")).touch()  # a file, but no tables
        result = run("health", "--json")
        assert result.exit_code == 1, result.output
        report = json.loads(result.stdout)
        assert report["status"] == "success"  # reachable
        assert report["schema"].startswith("missing")
        assert "agentkeep db upgrade" in report["schema"]

    def test_a_database_behind_says_so(self, database_url: str) -> None:
        assert run("db", "upgrade", "0005").exit_code == 0
        result = run("health")
        assert result.exit_code == 1, result.output
        assert f"behind: at 0005, newest {HEAD}" in said(result)
        assert run("db", "upgrade").exit_code == 0
        assert run("health").exit_code == 0


class TestFailures:
    def test_health_on_an_unreachable_postgresql_exits_5_without_the_password(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("AGENTKEEP_DATABASE_URL", UNREACHABLE)
        for args in (["health"], ["health", "--json"]):
            result = run(*args)
            assert result.exit_code == 5
            assert "s3cret-pw" not in result.output
            assert "agent:***@127.0.0.1" in said(result)
        report = json.loads(run("health", "--json").stdout)
        assert report["status"] == "error"
        assert report["message"].startswith("Database connection failed")

    def test_a_migration_on_an_unreachable_postgresql_exits_5_without_the_password(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("AGENTKEEP_DATABASE_URL", UNREACHABLE)
        result = run("db", "upgrade")
        assert result.exit_code == 5
        assert "unavailable" in said(result)
        assert "s3cret-pw" not in result.output

    @pytest.mark.parametrize("command", [["health"], ["db", "current"], ["db", "upgrade"]])
    def test_an_invalid_database_url_exits_2_with_a_clear_message(
        self, monkeypatch: pytest.MonkeyPatch, command: list[str]
    ) -> None:
        monkeypatch.setenv("AGENTKEEP_DATABASE_URL", "postgresql://agent:s3cret-pw@db:port/app")
        result = run(*command)
        assert result.exit_code == 2
        assert "AGENTKEEP_DATABASE_URL is not a database URL" in said(result)
        assert "s3cret-pw" not in result.output

    def test_an_unsupported_database_exits_2(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("AGENTKEEP_DATABASE_URL", "mysql://agent:s3cret-pw@db/app")
        result = run("health")
        assert result.exit_code == 2
        assert "use sqlite or postgresql" in said(result)
        assert "s3cret-pw" not in result.output

    def test_an_invalid_setting_exits_2_naming_the_variable_and_the_value(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("AGENTKEEP_DB_PORT", "[not-a-port]")
        monkeypatch.setenv("AGENTKEEP_POOL_SIZE", "0")
        result = run("health")
        assert result.exit_code == 2
        # the value is text, not Rich markup to be swallowed; no pydantic dump around it
        assert said(result) == (
            "error: AGENTKEEP_DB_PORT: Input should be a valid integer, unable to parse string"
            " as an integer (got '[not-a-port]'); AGENTKEEP_POOL_SIZE: Input should be greater"
            " than or equal to 1 (got '0')"
        )

    @pytest.mark.parametrize("name", ["openai_api_key", "database_url", "db_password"])
    def test_the_value_of_a_setting_that_may_hold_a_secret_is_never_printed(
        self, name: str
    ) -> None:
        error: Any = {"loc": (name,), "msg": "Input should be text", "input": "sk-s3cret"}
        problem = _setting_problem(error)
        assert problem == f"AGENTKEEP_{name.upper()}: Input should be text"


KEY = re.compile(r"ak_[A-Za-z0-9_-]{43}")


def _create_key(name: str = "ci") -> str:
    result = run("keys", "create", "--name", name)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


@pytest.mark.usefixtures("database_url")
class TestKeys:
    def test_create_prints_the_key_alone_on_stdout_and_the_warning_on_stderr(self) -> None:
        result = run("keys", "create", "--name", "ci")  # on an empty database: migrates it
        assert result.exit_code == 0, result.output
        assert KEY.fullmatch(result.stdout.strip())
        assert "store it now" in " ".join(result.stderr.split())
        assert "(ci)" in result.stderr
        assert run("db", "check").exit_code == 0

    def test_an_admin_key_says_so_when_made_and_listed(self) -> None:
        made = run("keys", "create", "--name", "ops", "--admin")
        assert made.exit_code == 0, made.output
        assert "admin API key" in made.stderr
        _create_key("app")
        listed = run("keys", "list").stdout
        assert "admin" in listed
        ops = next(line for line in listed.splitlines() if " ops " in f" {line} ")
        app = next(line for line in listed.splitlines() if " app " in f" {line} ")
        assert "yes" in ops
        assert "yes" not in app

    def test_the_command_a_refused_admin_route_suggests_makes_an_admin_key(self) -> None:
        from agentkeep.api.auth import ADMIN_KEY_NEEDED, MAKE_ADMIN_KEY

        assert MAKE_ADMIN_KEY in ADMIN_KEY_NEEDED
        program, *args = MAKE_ADMIN_KEY.replace("NAME", "ops").split()
        assert program == "agentkeep"
        made = run(*args)
        assert made.exit_code == 0, made.output
        assert "admin API key" in made.stderr

    def test_list_shows_prefix_name_and_dates_never_the_key(self) -> None:
        assert "no API keys" in said(run("keys", "list"))
        first, second = _create_key("ci"), _create_key("deploy bot")
        listed = run("keys", "list")
        assert listed.exit_code == 0, listed.output
        for key in (first, second):
            assert key[:11] in listed.output
            assert key not in listed.output
        assert "ci" in said(listed)
        assert "deploy bot" in said(listed)
        assert "created (UTC)" in said(listed)

    def test_revoke_by_prefix_marks_the_key_revoked(self) -> None:
        key = _create_key()
        revoked = run("keys", "revoke", key[:11])
        assert revoked.exit_code == 0, revoked.output
        assert f"{key[:11]}… (ci): revoked at" in said(revoked)
        row = next(line for line in run("keys", "list").output.splitlines() if key[:11] in line)
        assert row.count("UTC") == 0  # dates only; the header says UTC
        assert len(re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d", row)) == 2  # created and revoked

    def test_revoke_by_id_or_by_the_whole_key(self) -> None:
        by_key = _create_key()
        assert run("keys", "revoke", by_key).exit_code == 0
        assert run("keys", "revoke", by_key).exit_code == 0  # again: nothing changes, no error
        _create_key("other")
        created = run("keys", "create", "--name", "by-id")
        key_id = re.search(r"id ([0-9a-f-]{36})", created.stderr)
        assert key_id is not None, created.stderr
        result = run("keys", "revoke", key_id.group(1))
        assert result.exit_code == 0, result.output
        assert "(by-id): revoked" in said(result)

    def test_an_unknown_key_exits_3_and_a_malformed_one_exits_2(self) -> None:
        _create_key()
        unknown = run("keys", "revoke", "ak_nothing00")
        assert unknown.exit_code == 3
        assert "no API key matches" in said(unknown)
        malformed = run("keys", "revoke", "nonsense")
        assert malformed.exit_code == 2
        assert "neither an API key's id nor its prefix" in said(malformed)

    def test_a_prefix_shared_by_two_keys_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        made = iter(["ak_samesame" + "A" * 35, "ak_samesame" + "B" * 35])
        monkeypatch.setattr("agentkeep.repositories.api_keys.new_key", lambda: next(made))
        _create_key("one")
        _create_key("two")
        result = run("keys", "revoke", "ak_samesame")
        assert result.exit_code == 2
        assert "2 API keys start with 'ak_samesame': ak_samesame… (one, id " in said(result)
        assert "ak_samesame… (two, id " in said(result)
        assert "Traceback" not in result.output
        whole = "ak_samesame" + "B" * 35
        assert run("keys", "revoke", whole).exit_code == 0  # the whole key is exact

    def test_revoke_by_more_of_the_key_than_is_listed(self) -> None:
        key = _create_key()
        revoked = run("keys", "revoke", key[:12])
        assert revoked.exit_code == 0, revoked.output
        assert f"{key[:11]}… (ci): revoked at" in said(revoked)

    def test_revoke_by_a_short_prefix_and_the_minimum(self) -> None:
        key = _create_key()
        too_short = run("keys", "revoke", key[:6])
        assert too_short.exit_code == 2
        assert "at least 7 characters" in said(too_short)
        assert run("keys", "revoke", key[:7]).exit_code == 0

    def test_an_empty_name_exits_2(self) -> None:
        result = run("keys", "create", "--name", "")
        assert result.exit_code == 2
        assert "name" in said(result)


def test_keys_refuse_the_in_memory_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTKEEP_DATABASE_URL", "memory")
    result = run("keys", "create")
    assert result.exit_code == 2
    assert "in-memory store keeps nothing" in said(result)


class FakeUvicorn:
    """Stands in for ``uvicorn.run``: records how it was called instead of serving."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, dict[str, Any]]] = []

    def __call__(self, app: Any, **options: Any) -> None:
        self.calls.append((app, options))


@pytest.fixture
def uvicorn_run(monkeypatch: pytest.MonkeyPatch) -> FakeUvicorn:
    """``uvicorn.run`` recorded, and every address taken as free (nothing is bound here; the
    tests of a taken port use the real check)."""
    fake = FakeUvicorn()
    monkeypatch.setattr("uvicorn.run", fake)
    # the module, not the function of the same name the package exports
    serve_module = importlib.import_module("agentkeep.cli.serve")
    monkeypatch.setattr(serve_module, "check_free", lambda host, port: None)
    return fake


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


@pytest.fixture
def sqlite_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, clean_environment: None) -> str:
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    monkeypatch.setenv("AGENTKEEP_DATABASE_URL", url)
    return url


@pytest.mark.usefixtures("sqlite_url")
class TestServe:
    def test_serve_migrates_then_prints_where_it_listens_and_runs_uvicorn(
        self, uvicorn_run: FakeUvicorn, sqlite_url: str
    ) -> None:
        result = run("serve", "--port", "8123")
        assert result.exit_code == 0, result.output
        assert f"agentkeep {__version__} listening on http://127.0.0.1:8123" in result.stdout
        assert f"database: {sqlite_url}" in result.stdout
        assert "API docs: http://127.0.0.1:8123/docs" in result.stdout
        assert "embedder: hash-384 (built in, lexical" in result.stdout
        ((app, options),) = uvicorn_run.calls
        assert isinstance(app, FastAPI)
        assert options == {
            "host": "127.0.0.1",
            "port": 8123,
            "log_level": "info",
            "access_log": True,
        }
        assert f"at {HEAD}, newest {HEAD} (up to date)" in said(run("db", "current"))

    def test_host_and_port_default_to_the_settings(
        self, uvicorn_run: FakeUvicorn, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("AGENTKEEP_HOST", "localhost")
        monkeypatch.setenv("AGENTKEEP_PORT", "9001")
        result = run("serve")
        assert result.exit_code == 0, result.output
        assert "listening on http://localhost:9001" in result.stdout
        assert uvicorn_run.calls[0][1]["port"] == 9001

    def test_without_auto_migrate_it_warns_that_the_database_is_behind(
        self, uvicorn_run: FakeUvicorn, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("AGENTKEEP_AUTO_MIGRATE", "false")
        result = run("serve")
        assert result.exit_code == 0, result.output
        assert "the database is at empty" in said(result)
        assert "at empty" in said(run("db", "current"))

    def test_reload_hands_uvicorn_the_app_factory(self, uvicorn_run: FakeUvicorn) -> None:
        assert run("serve", "--reload").exit_code == 0
        ((app, options),) = uvicorn_run.calls
        assert app == "agentkeep.api.app:create_app"
        assert options["factory"] is True
        assert options["reload"] is True

    def test_workers_hand_uvicorn_the_app_factory_migrated_once(
        self, uvicorn_run: FakeUvicorn, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("AGENTKEEP_LOG_LEVEL", "WARNING")
        monkeypatch.setenv("AGENTKEEP_AUTO_MIGRATE", "true")  # restored after the test
        result = run("serve", "--workers", "3")
        assert result.exit_code == 0, result.output
        ((app, options),) = uvicorn_run.calls
        assert app == "agentkeep.api.app:create_app"
        assert options["factory"] is True
        assert options["workers"] == 3
        assert options["access_log"] is False  # never shown at WARNING: not built either
        # migrated here, once: the workers, which read the environment, do not migrate again
        assert os.environ["AGENTKEEP_AUTO_MIGRATE"] == "false"
        assert f"at {HEAD}, newest {HEAD} (up to date)" in said(run("db", "current"))

    def test_workers_come_from_agentkeep_workers(
        self, uvicorn_run: FakeUvicorn, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("AGENTKEEP_WORKERS", "2")
        monkeypatch.setenv("AGENTKEEP_AUTO_MIGRATE", "true")
        assert run("serve").exit_code == 0
        assert uvicorn_run.calls[0][1]["workers"] == 2

    def test_workers_refuse_the_in_memory_store(
        self, uvicorn_run: FakeUvicorn, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("AGENTKEEP_DATABASE_URL", "memory")
        result = run("serve", "--workers", "2")
        assert result.exit_code == 2, result.output
        assert "the in-memory store lives inside one server process" in said(result)
        assert "listening" not in result.output
        assert uvicorn_run.calls == []
        assert run("serve", "--workers", "1").exit_code == 0  # one process may keep it

    def test_workers_refuse_reload_and_zero(self, uvicorn_run: FakeUvicorn) -> None:
        result = run("serve", "--workers", "2", "--reload")
        assert result.exit_code == 2
        assert "--reload runs one server process" in said(result)
        assert run("serve", "--workers", "0").exit_code == 2
        assert uvicorn_run.calls == []

    @pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "example.org"])
    def test_it_refuses_a_non_loopback_address_without_api_keys(
        self, uvicorn_run: FakeUvicorn, host: str
    ) -> None:
        result = run("serve", "--host", host)
        assert result.exit_code == 2
        assert f"refusing to listen on {host} without API keys" in said(result)
        assert uvicorn_run.calls == []

    def test_the_refusal_also_applies_to_agentkeep_host(
        self, uvicorn_run: FakeUvicorn, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("AGENTKEEP_HOST", "0.0.0.0")
        assert run("serve").exit_code == 2
        assert uvicorn_run.calls == []

    @pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
    def test_loopback_addresses_need_no_key(self, uvicorn_run: FakeUvicorn, host: str) -> None:
        assert run("serve", "--host", host).exit_code == 0
        assert uvicorn_run.calls[0][1]["host"] == host

    def test_an_ipv6_address_is_printed_in_brackets(self, uvicorn_run: FakeUvicorn) -> None:
        assert "listening on http://[::1]:8000" in run("serve", "--host", "::1").stdout

    def test_allow_unauthenticated_lifts_the_refusal(
        self, uvicorn_run: FakeUvicorn, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        assert run("serve", "--host", "0.0.0.0", "--allow-unauthenticated").exit_code == 0
        monkeypatch.setenv("AGENTKEEP_ALLOW_UNAUTHENTICATED", "true")
        assert run("serve", "--host", "0.0.0.0").exit_code == 0
        assert len(uvicorn_run.calls) == 2

    def test_a_configured_key_lifts_the_refusal(
        self, uvicorn_run: FakeUvicorn, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("AGENTKEEP_API_KEYS", "k1,k2")
        result = run("serve", "--host", "0.0.0.0")
        assert result.exit_code == 0, result.output
        assert "listening on http://0.0.0.0:8000" in result.stdout

    def test_a_stored_key_lifts_the_refusal_and_a_revoked_one_does_not(
        self, uvicorn_run: FakeUvicorn
    ) -> None:
        key = _create_key()
        assert run("serve", "--host", "0.0.0.0").exit_code == 0
        assert run("keys", "revoke", key).exit_code == 0
        assert run("serve", "--host", "0.0.0.0").exit_code == 2
        assert len(uvicorn_run.calls) == 1

    def test_a_taken_port_is_refused_before_it_says_listening(
        self, taken_port: int, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        fake = FakeUvicorn()
        monkeypatch.setattr("uvicorn.run", fake)  # the real check, not the fixture's
        result = run("serve", "--port", str(taken_port))
        assert result.exit_code == 2, result.output
        assert "listening" not in result.output
        assert f"cannot listen on 127.0.0.1:{taken_port}" in said(result)
        assert "--port" in said(result)
        assert fake.calls == []

    def test_an_address_not_of_this_machine_is_refused(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        fake = FakeUvicorn()
        monkeypatch.setattr("uvicorn.run", fake)
        result = run("serve", "--host", "192.0.2.10", "--allow-unauthenticated")
        assert result.exit_code == 2, result.output
        assert "cannot listen on 192.0.2.10:8000" in said(result)
        assert fake.calls == []

    @pytest.mark.parametrize("host", ["a..b", "a" * 64 + ".example", "\udcff"])
    def test_a_host_that_is_not_a_name_or_address_is_refused_without_a_traceback(
        self, monkeypatch: pytest.MonkeyPatch, host: str
    ) -> None:
        fake = FakeUvicorn()
        monkeypatch.setattr("uvicorn.run", fake)
        result = run("serve", "--host", host, "--allow-unauthenticated")
        assert result.exit_code == 2, result.output
        assert "--host is not a valid host name or address" in said(result)
        assert fake.calls == []

    def test_an_unreachable_database_exits_5_before_uvicorn_starts(
        self, uvicorn_run: FakeUvicorn, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("AGENTKEEP_DATABASE_URL", UNREACHABLE)
        for auto_migrate in ("true", "false"):
            monkeypatch.setenv("AGENTKEEP_AUTO_MIGRATE", auto_migrate)
            result = run("serve")
            assert result.exit_code == 5
            assert "s3cret-pw" not in result.output
        assert uvicorn_run.calls == []

    def test_an_invalid_setting_exits_2(
        self, uvicorn_run: FakeUvicorn, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("AGENTKEEP_PORT", "not-a-port")
        result = run("serve")
        assert result.exit_code == 2
        assert "port" in said(result)
        assert uvicorn_run.calls == []

    def test_the_in_memory_store_is_served_on_loopback_and_refused_elsewhere(
        self, uvicorn_run: FakeUvicorn, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("AGENTKEEP_DATABASE_URL", "memory")
        result = run("serve")
        assert result.exit_code == 0, result.output
        assert "database: memory" in result.stdout
        assert run("serve", "--host", "0.0.0.0").exit_code == 2


def serve_in_a_process(tmp_path: Path, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTKEEP_")}
    env["AGENTKEEP_DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "agentkeep", "serve", "--port", "0"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class TestServeOnABadDatabase:
    """What a person sees in the terminal: one line saying why, no traceback, no server."""

    @pytest.mark.parametrize(
        ("url", "exit_code", "reason"),
        [
            (UNREACHABLE, 5, "database unavailable: connection failed"),
            ("postgresql+nodriver://agent:s3cret-pw@db/app", 2, "cannot be opened"),
            ("postgresql://agent:s3cret-pw@db:port/app", 2, "is not a database URL"),
            ("sqlite:///{file}/agentkeep.db", 2, "cannot be opened"),  # its directory is a file
            ("sqlite:///{tmp}", 5, "unable to open database file"),  # a directory, not a file
        ],
        ids=["unreachable", "unknown-driver", "invalid-url", "directory-is-a-file", "a-directory"],
    )
    def test_it_exits_with_one_line_and_no_traceback(
        self, tmp_path: Path, url: str, exit_code: int, reason: str
    ) -> None:
        (tmp_path / "file").write_text("")
        url = url.format(file=tmp_path / "file", tmp=tmp_path)
        result = serve_in_a_process(tmp_path, url)
        assert result.returncode == exit_code, result.stderr
        assert result.stdout == ""
        (line,) = result.stderr.splitlines()
        assert reason in line
        assert "Traceback" not in result.stderr
        assert "s3cret-pw" not in result.stderr
