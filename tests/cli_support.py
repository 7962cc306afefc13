"""What the tests of the ``agentkeep`` command share: run it in-process, read what it said, and
a database of the test's own named in ``AGENTKEEP_DATABASE_URL``, with nothing else from the
shell's environment.

The fixtures are a plugin of the whole suite (``tests/conftest.py``); a test module of the
command asks for ``clean_environment`` with ``pytestmark = pytest.mark.usefixtures(…)``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from agentkeep.cli import app


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def said(result: Result) -> str:
    """Everything printed, with Rich's line wrapping undone."""
    return " ".join(result.output.split())


@pytest.fixture
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
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    clean_environment: None,  # first: it clears AGENTKEEP_*
) -> str:
    """An empty database of this test's own, named in ``AGENTKEEP_DATABASE_URL``."""
    if request.param == "sqlite":
        path = tmp_path / "cli.db"
        path.touch()  # an empty database, as a fresh PostgreSQL one is (a missing file is none)
        url = f"sqlite:///{path}"
    else:
        from conftest import fresh_postgres_database

        url = fresh_postgres_database(
            request.getfixturevalue("postgres_server_url"), "agentkeep_cli"
        )
    monkeypatch.setenv("AGENTKEEP_DATABASE_URL", url)
    return url
