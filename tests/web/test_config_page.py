"""The Config page (export and import a project file) and the Home page's in-memory notice,
rendered on every backend without a browser; the browser flow is in ``tests/e2e/test_ui.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from agentkeep import Settings
from web.helpers import API, KEY, create, page, same_site, served

pytestmark = pytest.mark.anyio

PROJECT = Path(__file__).resolve().parents[2] / "examples" / "project.json"


class TestConfigPage:
    async def test_counts_what_the_store_declares_and_offers_export_and_import(
        self, client: httpx.AsyncClient
    ) -> None:
        await create(client, "tools", name="lookup_rate", parameters={"type": "object"})
        await create(client, "agents", name="helper", provider="echo")
        html = await page(client, "/config")
        assert "<h1>Config</h1>" in html
        assert '<a href="/config" aria-current="page">Config</a>' in html
        assert "<dt>Agents</dt><dd>1</dd>" in html
        assert "<dt>Tools</dt><dd>1</dd>" in html
        assert "<dt>Personas</dt><dd>0</dd>" in html
        assert "data-config-export" in html
        assert 'type="file" accept=".json,application/json"' in html
        assert "data-config-apply" in html

    async def test_the_script_previews_then_syncs_what_it_read(
        self, client: httpx.AsyncClient
    ) -> None:
        """The calls the page's script makes, with the headers it sends."""
        headers = {"Origin": "http://test", "content-type": "application/json"}
        project = PROJECT.read_text(encoding="utf-8")
        sync = f"{API}/config/sync"
        preview = await client.post(
            f"{sync}?dry_run=true&prune=false", content=project, headers=headers
        )
        assert preview.status_code == 200, preview.text
        assert sorted(preview.json()["agents"]["created"]) == ["bookkeeper", "helper"]
        assert (await client.get(f"{API}/agents")).json()["items"] == []  # nothing written yet
        synced = await client.post(f"{sync}?prune=false", content=project, headers=headers)
        assert synced.status_code == 200, synced.text
        html = await page(client, "/config")
        assert "<dt>Agents</dt><dd>2</dd>" in html
        exported = (await client.get(f"{API}/config/export")).json()
        assert [a["name"] for a in exported["agents"]] == ["bookkeeper", "helper"]


class TestSignedIn:
    async def test_the_page_needs_a_sign_in_and_an_import_needs_the_pages_token(
        self, keyed: httpx.AsyncClient
    ) -> None:
        assert (await keyed.get("/config")).status_code == 303
        await keyed.post("/login", data={"api_key": KEY, "next": "/config"})
        html = await page(keyed, "/config")
        assert 'name="agentkeep-csrf"' in html
        body = PROJECT.read_text(encoding="utf-8")
        origin = {"Origin": "http://test", "content-type": "application/json"}
        refused = await keyed.post(f"{API}/config/sync", content=body, headers=origin)
        assert refused.status_code == 403
        headers = {**origin, **await same_site(keyed)}
        synced = await keyed.post(f"{API}/config/sync", content=body, headers=headers)
        assert synced.status_code == 200, synced.text


class TestInMemoryNotice:
    @pytest.fixture
    async def memory(self) -> AsyncIterator[httpx.AsyncClient]:
        async with served(Settings(enable_db=False, config_file=PROJECT)) as c:
            yield c

    async def test_a_server_without_a_database_loads_the_file_and_says_nothing_is_kept(
        self, memory: httpx.AsyncClient
    ) -> None:
        html = await page(memory, "/")
        assert f"nothing is kept: the store is in memory, loaded from {PROJECT}" in html
        names = [a["name"] for a in (await memory.get(f"{API}/agents")).json()["items"]]
        assert sorted(names) == ["bookkeeper", "helper"]

    async def test_only_the_in_memory_store_has_the_notice(
        self, client: httpx.AsyncClient, backend: str
    ) -> None:
        html = await page(client, "/")
        if backend == "memory":
            assert "nothing is kept: the store is in memory</p>" in html
        else:
            assert "nothing is kept" not in html
