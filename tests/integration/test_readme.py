"""The README's Python examples run as written (on the in-memory store unless they name a
file, which goes in a temporary directory)."""

from __future__ import annotations

import importlib
import pkgutil
import re
import textwrap
from pathlib import Path

import anyio
import pytest
from fastapi import APIRouter
from fastapi.routing import APIWebSocketRoute

from agentkeep import Settings
from agentkeep.api import create_app, routers

README = Path(__file__).resolve().parents[2] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_readme_has_python_examples() -> None:
    assert len(_python_blocks()) >= 2


@pytest.mark.parametrize("index", range(len(_python_blocks())))
def test_readme_example_runs(index: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AGENTKEEP_DATABASE_URL", "memory")
    monkeypatch.chdir(tmp_path)  # an example may open a file of its own
    source = _python_blocks()[index]
    namespace: dict[str, object] = {}
    if "await " in source:
        body = textwrap.indent(source, "    ")
        exec(f"async def _example():\n{body}\n    db.close()\n", namespace)
        anyio.run(namespace["_example"])  # type: ignore[arg-type]
    else:
        exec(source + "\ndb.close()\n", namespace)


ROUTE_TABLE = "Every route the server has"
METHOD = re.compile(r"`(GET|HEAD|POST|PUT|PATCH|DELETE|WEBSOCKET)\b")


def _expanded(path: str) -> list[str]:
    """``/a/{b,c}/{id}`` -> ``/a/b/{}``, ``/a/c/{}``: braces with a comma are alternatives,
    without one a path parameter (whatever its name)."""
    choice = re.search(r"\{([^{}]*,[^{}]*)\}", path)
    if choice is None:
        return [re.sub(r"\{[^{}]*\}", "{}", path)]
    return [
        expanded
        for option in choice.group(1).split(",")
        for expanded in _expanded(path[: choice.start()] + option + path[choice.end() :])
    ]


def _documented_routes() -> set[tuple[str, str]]:
    text = README.read_text()
    table = text[text.index(ROUTE_TABLE) :].split("\n\n")[1]
    routes = set()
    for row in table.splitlines()[2:]:
        paths_cell, methods_cell = row.strip("|").split("|")[:2]
        methods = METHOD.findall(methods_cell)
        assert methods, row
        for path in re.findall(r"`([^`]+)`", paths_cell):
            routes |= {(method, p) for method in methods for p in _expanded(path)}
    return routes


def _served_routes() -> set[tuple[str, str]]:

    app = create_app(Settings(database_url="memory"))
    served = {
        (method.upper(), _expanded(path)[0])
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    # WebSocket routes are not in the OpenAPI schema: they are found in the routers' modules
    for module in pkgutil.iter_modules(routers.__path__):
        found = vars(importlib.import_module(f"{routers.__name__}.{module.name}")).values()
        for router in (r for r in found if isinstance(r, APIRouter)):
            sockets = [r for r in router.routes if isinstance(r, APIWebSocketRoute)]
            served |= {("WEBSOCKET", _expanded(route.path)[0]) for route in sockets}
    return served


def test_the_route_table_is_every_route_the_server_has() -> None:
    documented, served = _documented_routes(), _served_routes()
    assert sorted(served - documented) == [], "served but not in the README's route table"
    assert sorted(documented - served) == [], "in the README's route table but not served"
