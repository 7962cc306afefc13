"""The Memory page rendered on every backend, without a browser: the newest memories a page at a
time, a search with each hit's score parts as numbers, filters, bad filters as a 422 page, every
memory's text escaped, and the Home page's memory count and embedder. The browser flow (add,
change importance, delete) is in ``tests/e2e/test_ui_memory.py``."""

from __future__ import annotations

import re

import httpx
import pytest

from web.helpers import ESCAPED, SCRIPT, create, page

pytestmark = pytest.mark.anyio

ROWS = re.compile(r'<tr id="memory-([0-9a-f-]+)">')


class TestMemoryPage:
    async def test_lists_newest_first_and_escapes_every_memory(
        self, client: httpx.AsyncClient
    ) -> None:
        older = await create(client, "memories", content="likes tea", user_id="u1")
        newer = await create(client, "memories", content=SCRIPT, user_id="u2")
        html = await page(client, "/memory")
        assert ROWS.findall(html) == [newer["id"], older["id"]]
        assert SCRIPT not in html
        assert ESCAPED in html
        assert 'data-api="PATCH /api/v1/memories/' in html
        assert 'data-api="DELETE /api/v1/memories/' in html
        assert 'data-api="POST /api/v1/memories"' in html
        assert "hash-384" in html
        filtered = await page(client, "/memory?user_id=u1&agent_id=&memory_type=&min_score=")
        assert ROWS.findall(filtered) == [older["id"]]

    async def test_a_memory_that_will_expire_says_when(self, client: httpx.AsyncClient) -> None:
        lapsing = await create(
            client, "memories", content="parked on level 3", expires_at="2099-01-02T03:04:00Z"
        )
        lasting = await create(client, "memories", content="likes tea")
        html = await page(client, "/memory")
        row = html[html.index(f'id="memory-{lapsing["id"]}"') :].split("</tr>")[0]
        assert 'expires <time datetime="2099-01-02T03:04:00.000+00:00"' in row
        assert "2099-01-02 03:04 UTC" in row
        other = html[html.index(f'id="memory-{lasting["id"]}"') :].split("</tr>")[0]
        assert "expires" not in other

    async def test_a_search_shows_each_part_of_the_score(self, client: httpx.AsyncClient) -> None:
        cat = await create(client, "memories", content="the cat is called Tom", importance=0.9)
        await create(client, "memories", content="Paris is in France")
        html = await page(client, "/memory?q=cat+Tom")
        assert ROWS.findall(html)[0] == cat["id"]
        first_row = html[html.index(f'id="memory-{cat["id"]}"') :].split("</tr>")[0]
        parts = re.findall(r'<td class="num[^"]*">([^<]+)</td>', first_row)
        assert len(parts) == 4  # score, similarity, keyword, recency
        assert all(re.fullmatch(r"-?[01]\.\d{3}", part) for part in parts), parts
        assert 'value="0.9"' in first_row  # importance, editable
        assert (await client.get(f"/api/v1/memories/{cat['id']}")).json()["access_count"] == 0
        none = await page(client, "/memory?q=cat&min_score=1")
        assert ROWS.findall(none) == []

    @pytest.mark.parametrize(
        "query", ["min_score=2", "min_score=high", "agent_id=nope", "user_id=a%00b", "q=%00"]
    )
    async def test_bad_filters_are_a_422_page(self, client: httpx.AsyncClient, query: str) -> None:
        await page(client, f"/memory?{query}", status=422)

    async def test_pages_through_the_memories(self, client: httpx.AsyncClient) -> None:
        for i in range(52):
            await create(client, "memories", content=f"memory {i}")
        html = await page(client, "/memory")
        assert len(ROWS.findall(html)) == 50
        link = re.search(r'<a href="(/memory\?cursor=[^"]+)">Next page</a>', html)
        assert link is not None
        rest = await page(client, link.group(1).replace("&amp;", "&"))
        assert len(ROWS.findall(rest)) == 2

    async def test_home_shows_the_memory_count_and_the_embedder(
        self, client: httpx.AsyncClient
    ) -> None:
        await create(client, "memories", content="one")
        html = await page(client, "/")
        assert '<dt>Memories</dt><dd><a href="/memory">1</a></dd>' in html
        assert "<dt>Embedder</dt>" in html
        assert "hash-384 (built in" in html
