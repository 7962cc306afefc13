"""The Memory page in a real browser (Debian's Chromium driven by Playwright) against the real
server on SQLite: add a memory through the form, search for it and read its score's parts, change
its importance inline, see a ``<script>`` memory as text, and delete after confirming. One
browser session for the whole story; a screenshot goes to ``docs/screenshots/memory.png``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright
from test_ui import ARGS, CHROMIUM, DESKTOP, screenshot, serve, sqlite_settings, watch_policy

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base_url(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve(sqlite_settings(sqlite_template, tmp_path_factory.mktemp("memory-ui"))) as url:
        yield url


@pytest.fixture
def page(base_url: str) -> Iterator[Page]:
    if not Path(CHROMIUM).exists():
        reason = f"{CHROMIUM} is missing (apt-get install -y chromium; make test does it)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(base_url=base_url, viewport=DESKTOP)
        context.set_default_timeout(10_000)
        violations = watch_policy(context)
        opened = context.new_page()
        errors: list[str] = []
        opened.on("pageerror", lambda error: errors.append(str(error)))
        opened.on("dialog", lambda dialog: dialog.dismiss())  # no script dialog may open
        yield opened
        browser.close()
    assert errors == [], errors
    assert violations == [], violations


def test_add_search_reweigh_and_forget_a_memory(page: Page, base_url: str) -> None:
    api = httpx.Client(base_url=f"{base_url}/api/v1", timeout=10, trust_env=False)
    agent = api.post("/agents", json={"name": "memory-keeper", "provider": "echo"}).json()
    for content, importance in [
        ("The user's daughter is called Alice", 0.8),
        ("The user lives in Oslo", 0.4),
        ("<script>window.hacked = 1</script> prefers tea", 0.5),
    ]:
        body = {"content": content, "user_id": "u1", "importance": importance}
        assert api.post("/memories", json={**body, "agent_id": agent["id"]}).status_code == 201

    page.goto("/memory")
    expect(page.get_by_role("heading", level=1)).to_have_text("Memory")
    expect(page.get_by_text("hash-384", exact=False).first).to_be_visible()
    # a memory whose content is markup shows as text; its script never ran
    expect(
        page.locator(".memory-content", has_text="<script>window.hacked = 1</script>")
    ).to_be_visible()
    assert page.evaluate("window.hacked") is None

    # add one through the form (an empty content is refused next to the field first)
    page.get_by_role("button", name="Add memory").click()
    expect(page.locator("#new-content-error")).to_contain_text("content")
    form = page.locator("form", has=page.get_by_role("button", name="Add memory"))
    form.get_by_label("Content").fill("The user's cat is called Tom")
    form.get_by_label("User").fill("u1")
    form.get_by_label("Type").fill("fact")
    form.get_by_label("Importance (0 to 1)").fill("0.6")
    page.get_by_role("button", name="Add memory").click()
    newest = page.locator("table.memories tbody tr").first
    expect(newest).to_contain_text("The user's cat is called Tom")
    expect(newest).to_contain_text("fact")

    # search: the best match first, each part of its score a number
    page.get_by_label("Search memories").fill("what is the cat called")
    page.get_by_role("search").get_by_label("User").fill("u1")
    page.get_by_role("button", name="Search").click()
    expect(
        page.get_by_role("heading", name="Best matches for “what is the cat called”")
    ).to_be_visible()
    best = page.locator("table.memories tbody tr").first
    expect(best).to_contain_text("The user's cat is called Tom")
    headers = page.locator("table.memories thead th")
    expect(headers).to_contain_text(
        ["Memory", "Score", "Similarity", "Keyword", "Recency", "Importance"]
    )
    cells = best.locator("td.num")
    expect(cells).to_have_count(4)
    for cell in cells.all():
        expect(cell).to_have_text(re.compile(r"^[01]\.\d{3}$"))
    screenshot(page, "memory")
    memory_id = (best.get_attribute("id") or "").removeprefix("memory-")

    reweigh_and_forget(page, api, memory_id)
    api.close()


def reweigh_and_forget(page: Page, api: httpx.Client, memory_id: str) -> None:
    """Change a listed memory's importance inline, then delete it after a confirmation."""
    best = page.locator(f"#memory-{memory_id}")
    # importance inline: a bad value is refused, a good one stored
    importance = best.locator("input.importance")
    importance.fill("3")
    best.get_by_role("button", name="Save").click()
    expect(best.locator(".field-error")).to_contain_text("importance")
    importance.fill("0.95")
    best.get_by_role("button", name="Save").click()
    expect(page.locator(f"#memory-{memory_id} input.importance")).to_have_value("0.95")
    assert api.get(f"/memories/{memory_id}").json()["importance"] == 0.95

    # delete after a confirmation (Cancel first keeps it)
    row = page.locator(f"#memory-{memory_id}")
    row.get_by_role("button", name="Delete…").click()
    dialog = page.locator(f"#delete-{memory_id}")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    row.get_by_role("button", name="Delete…").click()
    dialog.get_by_role("button", name="Delete").click()
    expect(page.locator(f"#memory-{memory_id}")).to_have_count(0)
    assert api.get(f"/memories/{memory_id}").status_code == 404
