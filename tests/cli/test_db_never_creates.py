"""``agentkeep db current``, ``db check``, ``db downgrade`` and the commands that change only what
is stored (``keys revoke``, ``conversations purge`` / ``abandon-idle``, ``memory reindex`` /
``prune``) never make a database: given a SQLite file that does not exist (a mistyped path or
URL), they say there is no database there, exit 5 as every command that only reads does, and
leave the file system as it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentkeep.db import migrate
from cli_support import run, said

pytestmark = pytest.mark.usefixtures("clean_environment")

NEVER_CREATE = [
    ["db", "current"],
    ["db", "check"],
    ["db", "downgrade", "base"],
    # they change only what is stored: on a new database they could do nothing
    ["keys", "revoke", "ak_abcd"],
    ["conversations", "purge", "--status", "completed", "--older-than-seconds", "60"],
    ["conversations", "abandon-idle", "--idle-seconds", "60"],
    ["memory", "reindex"],
    ["memory", "prune", "--below", "0.5", "--yes"],
]


@pytest.mark.parametrize("args", NEVER_CREATE, ids=" ".join)
def test_a_mistyped_sqlite_url_exits_5_and_creates_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, args: list[str]
) -> None:
    target = tmp_path / "typo" / "app.db"
    monkeypatch.setenv("AGENTKEEP_DATABASE_URL", f"sqlite:///{target}")
    result = run(*args)
    assert result.exit_code == 5, result.output
    assert f"no database at {target}" in said(result)
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)  # refused, not raised
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", NEVER_CREATE, ids=" ".join)
def test_a_missing_file_in_an_existing_directory_is_not_created(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, args: list[str]
) -> None:
    target = tmp_path / "ap.db"  # the directory is there; only the file name is wrong
    monkeypatch.setenv("AGENTKEEP_DATABASE_URL", f"sqlite:///{target}")
    assert run(*args).exit_code == 5
    assert not target.exists()


@pytest.mark.parametrize("args", NEVER_CREATE, ids=" ".join)
def test_the_default_data_directory_is_not_made_either(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, args: list[str]
) -> None:
    monkeypatch.setenv("AGENTKEEP_DATA_DIR", str(tmp_path / "data"))
    result = run(*args)
    assert result.exit_code == 5, result.output
    assert f"no database at {tmp_path / 'data' / 'agentkeep.db'}" in said(result)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_file_is_read_and_upgrade_still_creates_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    target = tmp_path / "app.db"
    monkeypatch.setenv("AGENTKEEP_DATABASE_URL", f"sqlite:///{target}")
    assert run("db", "upgrade").exit_code == 0  # a command that writes makes the database
    result = run("db", "current")
    assert result.exit_code == 0, result.output
    assert f"at {migrate.head()}" in said(result)
    assert run("db", "check").exit_code == 0
