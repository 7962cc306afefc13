"""The ``agentkeep`` command, run in-process on the database ``AGENTKEEP_DATABASE_URL`` names."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from agentkeep.cli import app
from conftest import fresh_postgres_database

UNREACHABLE = "postgresql://agent:s3cret-pw@127.0.0.1:1/agentkeep"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only what a test sets: no ``AGENTKEEP_*`` variable or ``.env`` from the shell."""
    for name in list(os.environ):
        if name.startswith("AGENTKEEP_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(
    params=[
        pytest.param("sqlite", marks=pytest.mark.sqlite),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def database_url(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> str:
    """An empty database of this test's own, named in ``AGENTKEEP_DATABASE_URL``."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'cli.db'}"
    else:
        url = fresh_postgres_database(
            request.getfixturevalue("postgres_server_url"), "agentkeep_cli"
        )
    monkeypatch.setenv("AGENTKEEP_DATABASE_URL", url)
    return url


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def said(result: Result) -> str:
    """Everything printed, with Rich's line wrapping undone."""
    return " ".join(result.output.split())


@pytest.mark.usefixtures("database_url")
class TestDatabaseCommands:
    def test_current_on_an_empty_database_says_it_is_behind(self) -> None:
        result = run("db", "current")
        assert result.exit_code == 0
        assert "at empty, newest 0002" in said(result)
        assert "behind" in said(result)

    def test_upgrade_migrates_and_current_then_reports_the_head(self) -> None:
        upgraded = run("db", "upgrade")
        assert upgraded.exit_code == 0, upgraded.output
        assert "empty -> 0002" in said(upgraded)
        current = run("db", "current")
        assert current.exit_code == 0
        assert "at 0002, newest 0002 (up to date)" in said(current)

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

    def test_an_unknown_revision_exits_5_with_the_reason(self) -> None:
        result = run("db", "upgrade", "no-such-revision")
        assert result.exit_code == 5
        assert "migration failed" in said(result)
        assert "no-such-revision" in said(result)


@pytest.mark.usefixtures("database_url")
class TestHealth:
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

    def test_an_invalid_setting_exits_2_and_its_details_are_printed_verbatim(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("AGENTKEEP_DB_PORT", "not-a-port")
        result = run("health")
        assert result.exit_code == 2
        assert "db_port" in said(result)
        # pydantic's "[type=..., input_value=...]" is text, not Rich markup to be swallowed
        assert "input_value='not-a-port'" in said(result)
