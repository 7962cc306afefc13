"""Personas, modules, agents, tools and workflows over HTTP: one CRUD shape, good and bad."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from api.shapes import error_of

pytestmark = pytest.mark.anyio

API = "/api/v1"

RESOURCES: dict[str, dict[str, Any]] = {
    "personas": {"name": "support", "template": "You are {name}.", "first_message": "Hi!"},
    "modules": {
        "name": "refunds",
        "type": "instructions",
        "trigger_pattern": "(?i)refund",
        "execution_context": "IMMEDIATE",
    },
    "agents": {"name": "helper", "provider": "echo", "model_settings": {"temperature": 0.1}},
    "tools": {"name": "current_time", "parameters": {"type": "object"}},
    "workflows": {"name": "triage", "steps": ["a", "b"]},
}
NAMES = list(RESOURCES)


def one(resource: str) -> str:
    return resource.removesuffix("s")


@pytest.mark.parametrize("resource", NAMES)
class TestCrud:
    async def test_create_get_patch_put_delete_round_trip(
        self, client: httpx.AsyncClient, resource: str
    ) -> None:
        body = RESOURCES[resource]
        created = await client.post(f"{API}/{resource}", json=body)
        assert created.status_code == 201, created.text
        item = created.json()
        assert item["name"] == body["name"]
        url = f"{API}/{resource}/{item['id']}"

        assert (await client.get(url)).json() == item

        patched = await client.patch(url, json={"description": "changed"})
        assert patched.status_code == 200
        assert patched.json()["description"] == "changed"
        assert patched.json()["name"] == body["name"]

        replaced = await client.put(url, json={**body, "name": "renamed"})
        assert replaced.status_code == 200
        assert replaced.json()["name"] == "renamed"
        assert replaced.json()["description"] is None  # PUT replaces the whole declaration

        assert (await client.delete(url)).status_code == 204
        error = error_of(await client.get(url), 404)
        assert error == {
            "code": "not_found",
            "message": f"{one(resource)} {item['id']} not found",
            "field": f"{one(resource)}_id",
        }
        error_of(await client.delete(url), 404)

    async def test_list_pages_by_name(self, client: httpx.AsyncClient, resource: str) -> None:
        for name in ["c", "a", "b"]:
            response = await client.post(
                f"{API}/{resource}", json={**RESOURCES[resource], "name": name}
            )
            assert response.status_code == 201
        first = (await client.get(f"{API}/{resource}", params={"limit": 2})).json()
        assert [i["name"] for i in first["items"]] == ["a", "b"]
        rest = await client.get(
            f"{API}/{resource}", params={"limit": 2, "cursor": first["next_cursor"]}
        )
        assert [i["name"] for i in rest.json()["items"]] == ["c"]
        assert rest.json()["next_cursor"] is None

    async def test_a_taken_name_is_a_conflict(
        self, client: httpx.AsyncClient, resource: str
    ) -> None:
        body = RESOURCES[resource]
        assert (await client.post(f"{API}/{resource}", json=body)).status_code == 201
        error = error_of(await client.post(f"{API}/{resource}", json=body), 409)
        assert error["code"] == "conflict"
        assert error["field"] == "name"
        assert error["message"].endswith(f'named "{body["name"]}" already exists')

    @pytest.mark.parametrize(
        ("change", "status", "field"),
        [
            ({"name": ""}, 422, "name"),
            ({"name": "x" * 256}, 422, "name"),
            ({"name": "nul\x00"}, 422, "name"),
            ({"unknown_field": 1}, 422, "unknown_field"),
        ],
    )
    async def test_bad_bodies_are_refused_naming_the_field(
        self,
        client: httpx.AsyncClient,
        resource: str,
        change: dict[str, Any],
        status: int,
        field: str,
    ) -> None:
        error = error_of(
            await client.post(f"{API}/{resource}", json={**RESOURCES[resource], **change}), status
        )
        assert error["field"] == field
        assert (await client.get(f"{API}/{resource}")).json()["items"] == []

    async def test_a_missing_name_and_a_non_object_body_are_refused(
        self, client: httpx.AsyncClient, resource: str
    ) -> None:
        body = {k: v for k, v in RESOURCES[resource].items() if k != "name"}
        assert error_of(await client.post(f"{API}/{resource}", json=body), 422)["field"] == "name"
        error_of(await client.post(f"{API}/{resource}", json=[1, 2]), 422)
        invalid = await client.post(
            f"{API}/{resource}", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert error_of(invalid, 400)["code"] == "invalid_json"

    async def test_bad_ids_and_cursors(self, client: httpx.AsyncClient, resource: str) -> None:
        error = error_of(await client.get(f"{API}/{resource}/not-a-uuid"), 422)
        assert error["field"] == f"{one(resource)}_id"
        error_of(await client.patch(f"{API}/{resource}/{uuid.uuid4()}", json={}), 404)
        error_of(
            await client.put(f"{API}/{resource}/{uuid.uuid4()}", json=RESOURCES[resource]), 404
        )
        assert error_of(await client.get(f"{API}/{resource}?cursor=%%%"), 422)["field"] == "cursor"
        assert error_of(await client.get(f"{API}/{resource}?limit=0"), 422)["field"] == "limit"
        too_many = error_of(await client.get(f"{API}/{resource}?limit=501"), 422)
        assert "500" in too_many["message"]

    async def test_a_required_field_cannot_be_cleared(
        self, client: httpx.AsyncClient, resource: str
    ) -> None:
        item = (await client.post(f"{API}/{resource}", json=RESOURCES[resource])).json()
        error = error_of(
            await client.patch(f"{API}/{resource}/{item['id']}", json={"name": None}), 422
        )
        assert error["field"] == "name"


class TestSpecifics:
    async def test_module_with_a_bad_pattern_or_context_is_refused(
        self, client: httpx.AsyncClient
    ) -> None:
        bad_pattern = {**RESOURCES["modules"], "trigger_pattern": "(unclosed"}
        assert error_of(await client.post(f"{API}/modules", json=bad_pattern), 422)["field"] == (
            "trigger_pattern"
        )
        bad_context = {**RESOURCES["modules"], "execution_context": "SOMETIMES"}
        error_of(await client.post(f"{API}/modules", json=bad_context), 422)

    async def test_modules_filter_by_execution_context(self, client: httpx.AsyncClient) -> None:
        await client.post(f"{API}/modules", json=RESOURCES["modules"])
        await client.post(
            f"{API}/modules",
            json={**RESOURCES["modules"], "name": "later", "execution_context": "POST_RESPONSE"},
        )
        page = await client.get(f"{API}/modules", params={"execution_context": "POST_RESPONSE"})
        assert [m["name"] for m in page.json()["items"]] == ["later"]
        error_of(await client.get(f"{API}/modules", params={"execution_context": "NEVER"}), 422)

    async def test_personas_filter_by_active(self, client: httpx.AsyncClient) -> None:
        await client.post(f"{API}/personas", json=RESOURCES["personas"])
        await client.post(
            f"{API}/personas", json={**RESOURCES["personas"], "name": "old", "is_active": False}
        )
        page = await client.get(f"{API}/personas", params={"active": "false"})
        assert [p["name"] for p in page.json()["items"]] == ["old"]

    async def test_agent_with_an_unknown_persona_is_not_found(
        self, client: httpx.AsyncClient
    ) -> None:
        body = {**RESOURCES["agents"], "persona_id": str(uuid.uuid4())}
        assert error_of(await client.post(f"{API}/agents", json=body), 404)["field"] == "persona_id"
        assert (await client.get(f"{API}/agents")).json()["items"] == []

    async def test_an_unknown_provider_is_refused_when_saving(
        self, client: httpx.AsyncClient
    ) -> None:
        body = {**RESOURCES["agents"], "provider": "nonexistent"}
        error = error_of(await client.post(f"{API}/agents", json=body), 422)
        assert error["field"] == "provider"
        assert "echo, openai" in error["message"]
        assert (await client.get(f"{API}/agents")).json()["items"] == []
        agent = (await client.post(f"{API}/agents", json=RESOURCES["agents"])).json()
        patched = await client.patch(f"{API}/agents/{agent['id']}", json={"provider": "nope"})
        assert error_of(patched, 422)["field"] == "provider"
        assert (await client.get(f"{API}/agents/{agent['id']}")).json()["provider"] == "echo"

    async def test_agents_filter_by_persona(self, client: httpx.AsyncClient) -> None:
        persona = (await client.post(f"{API}/personas", json=RESOURCES["personas"])).json()
        await client.post(
            f"{API}/agents", json={**RESOURCES["agents"], "persona_id": persona["id"]}
        )
        await client.post(f"{API}/agents", json={**RESOURCES["agents"], "name": "other"})
        page = await client.get(f"{API}/agents", params={"persona_id": persona["id"]})
        assert [a["name"] for a in page.json()["items"]] == ["helper"]

    async def test_oversized_metadata_names_the_limit(self, client: httpx.AsyncClient) -> None:
        body = {**RESOURCES["agents"], "metadata": {"blob": "x" * 70_000}}
        error = error_of(await client.post(f"{API}/agents", json=body), 413)
        assert error == {
            "code": "too_large",
            "message": error["message"],
            "field": "metadata",
        }
        assert "65536" in error["message"]


class TestAgentTools:
    async def _agent_and_tool(self, client: httpx.AsyncClient) -> tuple[str, str]:
        agent = (await client.post(f"{API}/agents", json=RESOURCES["agents"])).json()
        tool = (await client.post(f"{API}/tools", json=RESOURCES["tools"])).json()
        return agent["id"], tool["id"]

    async def test_attach_list_get_detach(self, client: httpx.AsyncClient) -> None:
        agent_id, tool_id = await self._agent_and_tool(client)
        link = f"{API}/agents/{agent_id}/tools/{tool_id}"
        error_of(await client.get(link), 404)

        attached = await client.post(link)
        assert attached.status_code == 201
        assert attached.json()["id"] == tool_id
        assert (await client.post(link)).status_code == 200  # attaching again changes nothing

        assert (await client.get(link)).json()["name"] == "current_time"
        tools = (await client.get(f"{API}/agents/{agent_id}/tools")).json()
        assert ([t["id"] for t in tools["items"]], tools["next_cursor"]) == ([tool_id], None)
        agents = (await client.get(f"{API}/tools/{tool_id}/agents")).json()
        assert [a["id"] for a in agents["items"]] == [agent_id]

        assert (await client.delete(link)).status_code == 204
        error_of(await client.delete(link), 404)
        assert (await client.get(f"{API}/agents/{agent_id}/tools")).json()["items"] == []

    async def test_unknown_agent_or_tool(self, client: httpx.AsyncClient) -> None:
        agent_id, tool_id = await self._agent_and_tool(client)
        missing = str(uuid.uuid4())
        error = error_of(await client.post(f"{API}/agents/{missing}/tools/{tool_id}"), 404)
        assert error["field"] == "agent_id"
        error = error_of(await client.post(f"{API}/agents/{agent_id}/tools/{missing}"), 404)
        assert error["field"] == "tool_id"
        error_of(await client.get(f"{API}/agents/{missing}/tools"), 404)
        error_of(await client.get(f"{API}/tools/{missing}/agents"), 404)
        error = error_of(await client.post(f"{API}/agents/{agent_id}/tools/nope"), 422)
        assert error["field"] == "tool_id"

    async def test_deleting_a_tool_detaches_it(self, client: httpx.AsyncClient) -> None:
        agent_id, tool_id = await self._agent_and_tool(client)
        await client.post(f"{API}/agents/{agent_id}/tools/{tool_id}")
        assert (await client.delete(f"{API}/tools/{tool_id}")).status_code == 204
        assert (await client.get(f"{API}/agents/{agent_id}/tools")).json()["items"] == []


class TestAgentSettings:
    """An agent's ``model_settings`` never hold a key, and its history options are what a turn
    reads: refused on create, replace and patch, naming the setting."""

    @pytest.mark.parametrize(
        ("given", "field", "says"),
        [
            ({"api_key": "sk-123"}, "api_key", "never stored on an agent"),
            ({"api_key": None}, "api_key", "never stored on an agent"),
            ({"api_key_env": "HOME"}, "api_key_env", "_API_KEY"),
            ({"api_key_env": 7}, "api_key_env", "_API_KEY"),
            ({"history_messages": -1}, "history_messages", "whole number"),
            ({"history_messages": "x"}, "history_messages", "whole number"),
            ({"history_messages": True}, "history_messages", "whole number"),
            ({"history_messages": 2.5}, "history_messages", "whole number"),
            ({"history_tokens": -5}, "history_tokens", "whole number"),
            ({"history_scope": "galaxy"}, "history_scope", "conversation, user"),
        ],
    )
    async def test_bad_settings_are_a_422_naming_the_setting(
        self, client: httpx.AsyncClient, given: dict[str, Any], field: str, says: str
    ) -> None:
        body = {"name": "k", "provider": "openai", "model_settings": given}
        error = error_of(await client.post(f"{API}/agents", json=body), 422)
        assert error["field"] == f"model_settings.{field}"
        assert says in error["message"]
        assert (await client.get(f"{API}/agents")).json()["items"] == []

        created = await client.post(f"{API}/agents", json={"name": "k"})
        url = f"{API}/agents/{created.json()['id']}"
        for method, change in [("patch", {"model_settings": given}), ("put", body)]:
            response = await client.request(method, url, json=change)
            assert error_of(response, 422)["field"] == f"model_settings.{field}"
        assert (await client.get(url)).json()["model_settings"] == {}

    async def test_good_settings_are_kept(self, client: httpx.AsyncClient) -> None:
        settings = {
            "api_key_env": "LOCAL_LLM_API_KEY",
            "history_messages": 0,
            "history_tokens": None,
            "history_scope": "conversation",
            "temperature": 0.2,
        }
        body = {"name": "k", "provider": "openai", "model_settings": settings}
        created = await client.post(f"{API}/agents", json=body)
        assert created.status_code == 201, created.text
        assert created.json()["model_settings"] == settings


class TestWorkflowSteps:
    @pytest.mark.parametrize(
        ("steps", "field"),
        [
            ([42], "steps.0"),
            (["a", None], "steps.1"),
            ([True], "steps.0"),
            ([[1, 2]], "steps.0"),
            ([{}], "steps.0"),
            ([{"retries": 2}], "steps.0"),
            ([""], "steps.0"),
            ([{"agent": 7}], "steps.0.agent"),
            ([{"agent": "a", "tool": None}], "steps.0.tool"),
        ],
    )
    async def test_a_step_that_names_no_agent_or_tool_is_a_422(
        self, client: httpx.AsyncClient, steps: list[Any], field: str
    ) -> None:
        response = await client.post(f"{API}/workflows", json={"name": "w", "steps": steps})
        error = error_of(response, 422)
        assert error["field"] == field
        assert (await client.get(f"{API}/workflows")).json()["items"] == []
        created = await client.post(f"{API}/workflows", json={"name": "w", "steps": ["a"]})
        url = f"{API}/workflows/{created.json()['id']}"
        error_of(await client.patch(url, json={"steps": steps}), 422)
        assert (await client.get(url)).json()["steps"] == ["a"]

    async def test_names_and_step_objects_are_kept_in_order(
        self, client: httpx.AsyncClient
    ) -> None:
        steps = ["triage", {"agent": "support", "retries": 2}, {"tool": "clock", "wait": 5}]
        created = await client.post(f"{API}/workflows", json={"name": "w", "steps": steps})
        assert created.status_code == 201, created.text
        assert created.json()["steps"] == steps
