"""Configuration as code over HTTP: sync a project document, export the store, on every backend."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from agentkeep import Settings
from agentkeep.api import create_app
from api.shapes import error_of

pytestmark = pytest.mark.anyio

SYNC = "/api/v1/config/sync"
EXPORT = "/api/v1/config/export"
EXAMPLE = json.loads((Path(__file__).parents[2] / "examples" / "project.json").read_text())


async def test_sync_creates_then_a_second_sync_changes_nothing(client: httpx.AsyncClient) -> None:
    first = await client.post(SYNC, json=EXAMPLE)
    assert first.status_code == 200, first.text
    assert first.json()["agents"]["created"] == ["helper", "bookkeeper"]
    second = (await client.post(SYNC, json=EXAMPLE)).json()
    assert second["agents"]["unchanged"] == ["helper", "bookkeeper"]
    assert all(
        not second[kind]["created"] and not second[kind]["updated"] for kind in ("tools", "agents")
    )
    agents = (await client.get("/api/v1/agents")).json()["items"]
    assert [a["name"] for a in agents] == ["bookkeeper", "helper"]


async def test_a_dry_run_writes_nothing(client: httpx.AsyncClient) -> None:
    report = (await client.post(SYNC, params={"dry_run": "true"}, json=EXAMPLE)).json()
    assert report["dry_run"] is True
    assert report["tools"]["created"] == ["lookup_rate"]
    assert (await client.get("/api/v1/tools")).json()["items"] == []


async def test_prune_deletes_what_the_document_leaves_out(client: httpx.AsyncClient) -> None:
    await client.post(SYNC, json=EXAMPLE)
    report = (
        await client.post(
            SYNC,
            params={"prune": "true"},
            json={
                "agents": [
                    {
                        "name": "helper",
                        "provider": "echo",
                        "description": EXAMPLE["agents"][0]["description"],
                    }
                ]
            },
        )
    ).json()
    assert report["agents"]["deleted"] == ["bookkeeper"]
    assert report["tools"]["deleted"] == ["lookup_rate"]
    exported = (await client.get(EXPORT)).json()
    assert exported == {"agents": [EXAMPLE["agents"][0]]}


async def test_export_then_sync_changes_nothing(client: httpx.AsyncClient) -> None:
    await client.post(SYNC, json=EXAMPLE)
    await client.post("/api/v1/agents", json={"name": "registered-later", "provider": "echo"})
    exported = (await client.get(EXPORT)).json()
    assert "registered-later" in [a["name"] for a in exported["agents"]]
    assert exported["agents"][0]["tools"] == ["lookup_rate"]
    report = (await client.post(SYNC, json=exported)).json()
    assert all(
        not report[k]["created"] and not report[k]["updated"]
        for k in ("personas", "modules", "tools", "agents", "workflows")
    )
    assert (await client.get(EXPORT)).json() == exported


async def test_an_unknown_reference_is_a_422_naming_its_path_and_nothing_is_written(
    client: httpx.AsyncClient,
) -> None:
    document: dict[str, Any] = {
        "tools": [{"name": "convert"}],
        "agents": [{"name": "a", "tools": ["convert", "missing"]}],
    }
    error = error_of(await client.post(SYNC, json=document), 422)
    assert error["field"] == "agents[0].tools[1]"
    assert "there is no tool named" in error["message"]
    assert (await client.get("/api/v1/tools")).json()["items"] == []


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"tools": [{"name": "t"}, {"name": "t"}]}, "tools[1].name"),
        ({"agents": [{"name": "a", "tools": ["t", "t"]}]}, "agents[0].tools[1]"),
        ({"agents": [{"name": "a", "modules": ["m", "m"]}]}, "agents[0].modules[1]"),
    ],
)
async def test_what_the_types_cannot_say_is_a_422(
    client: httpx.AsyncClient, document: dict[str, Any], field: str
) -> None:
    error = error_of(await client.post(SYNC, json=document), 422)
    assert error["field"] == field


async def test_a_wrong_type_is_a_422_naming_the_path_as_a_file_names_it(
    client: httpx.AsyncClient,
) -> None:
    error = error_of(await client.post(SYNC, json={"agents": [{"name": "a", "tools": [1]}]}), 422)
    assert error["field"] == "agents[0].tools[0]"
    assert error["message"] == "body: agents[0].tools[0]: Input should be a valid string"
    error = error_of(await client.post(SYNC, json={"agents": [{"name": ""}]}), 422)
    assert error["message"] == "body: agents[0].name: String should have at least 1 character"


async def test_both_routes_need_the_api_key_when_keys_are_on(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"api_keys": [SecretStr("ak_config_test_key")]}))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as anonymous,
    ):
        assert error_of(await anonymous.get(EXPORT), 401)["code"] == "unauthorized"
        assert error_of(await anonymous.post(SYNC, json=EXAMPLE), 401)["code"] == "unauthorized"
        keyed = {"Authorization": "Bearer ak_config_test_key"}
        assert (await anonymous.post(SYNC, json=EXAMPLE, headers=keyed)).status_code == 200
        assert (await anonymous.get(EXPORT, headers=keyed)).json()["agents"]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"agents": [{"name": "a", "name": "b"}]}',
        b'{"agents": [], "agents": [{"name": "b"}]}',
        b'{"agents": [{"name": "b", "metadata": {"k": 1, "k": 2}}]}',
    ],
)
@pytest.mark.parametrize("dry_run", ["true", "false"])
async def test_a_key_given_twice_is_a_422_as_in_a_file_and_nothing_is_written(
    client: httpx.AsyncClient, raw: bytes, dry_run: str
) -> None:
    response = await client.post(
        f"{SYNC}?dry_run={dry_run}", content=raw, headers={"content-type": "application/json"}
    )
    error = error_of(response, 422)
    assert error["field"] == "body"
    assert "is given twice" in error["message"]
    assert (await client.get("/api/v1/agents")).json()["items"] == []


async def test_a_body_that_is_not_json_is_still_a_400(client: httpx.AsyncClient) -> None:
    response = await client.post(SYNC, content=b"{", headers={"content-type": "application/json"})
    assert error_of(response, 400)["code"] == "invalid_json"


@pytest.mark.parametrize(
    ("document", "field"),
    [
        (
            {"agents": [{"name": "a", "model_settings": {"api_key": "sk-1"}}]},
            "agents[0].model_settings.api_key",
        ),
        (
            {"agents": [{"name": "a", "model_settings": {"history_scope": "galaxy"}}]},
            "agents[0].model_settings.history_scope",
        ),
        ({"workflows": [{"name": "w", "steps": ["a", 42]}]}, "workflows[0].steps[1]"),
    ],
)
async def test_what_an_agent_or_workflow_route_refuses_sync_refuses_too(
    client: httpx.AsyncClient, document: dict[str, Any], field: str
) -> None:
    error = error_of(await client.post(SYNC, json=document), 422)
    assert error["field"] == field
    assert (await client.get("/api/v1/agents")).json()["items"] == []
