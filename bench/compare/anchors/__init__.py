"""The anchors: the libraries users choose instead of agentkeep, one module each.

Each runs inside the anchors' virtual environment (``.bench-venv``, made by the benchmark from
``requirements-anchors.txt``), started by :mod:`bench.compare.child`, and exposes
``open_subject(spec)``. The libraries are not installed where mypy checks this code, so they are
imported through :func:`lib` (typed ``Any``) rather than by ``import`` statements.
"""

from __future__ import annotations

import importlib
from importlib.metadata import version
from typing import Any


def lib(name: str) -> Any:
    """The module ``name``, typed ``Any`` (it is installed only in the anchors' venv)."""
    return importlib.import_module(name)


def versions(*packages: str) -> dict[str, str]:
    return {package: version(package) for package in packages}


def sqlalchemy_sqlite_durability(sync_conn: Any) -> str:
    """Journal mode and synchronous level on a SQLAlchemy connection's DB-API connection."""
    from bench.compare.measure import sqlite_durability

    return sqlite_durability(sync_conn.connection.driver_connection)
