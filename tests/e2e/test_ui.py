"""The web UI in a real browser: Debian's Chromium driven by Playwright, against the real server.

The app runs under uvicorn on a free loopback port (SQLite: one backend is enough for the
browser flow; the pages themselves are tested on every backend in ``tests/web``). Each test
works as a person would, through labelled fields and buttons: create an agent (an error from the
API shown next to the name first), attach a tool, chat and watch tokens arrive before the reply
is complete, stop a stream, reload and find the history, see a ``<script>`` message as text,
delete the agent after confirming, use a phone-sized screen (the message box on the first
screen); create, edit and delete personas, modules and workflows (a duplicate name refused next
to the field); see times in the browser's locale and emoji and CJK text drawn, not as boxes;
find a chat bot's conversation by its text on the Conversations page, read its data and
questions, abandon, resume and complete it (a refused change of status shown by its button).
Every page is watched for Content-Security-Policy violations (a script, style or connection the
policy refused): there must be none. With API keys on, a visitor signs in and works through the
API with the session cookie; the key is never in a page. Screenshots of every page are written
to ``docs/screenshots/`` (the README shows them).

Without ``/usr/bin/chromium`` (or, for the emoji and CJK test, the Noto fonts) the tests are
skipped, except under ``CI=true``, where they fail: ``make test`` installs them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Locator,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)
from pydantic import SecretStr

from agentkeep import Settings
from agentkeep.api import create_app
from servers import serve_app

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
DESKTOP = ViewportSize(width=1280, height=860)
PHONE = ViewportSize(width=390, height=844)
API = "/api/v1"
PROJECT = Path(__file__).resolve().parents[2] / "examples" / "project.json"


@contextmanager
def serve(settings: Settings) -> Iterator[str]:
    """The app for ``settings`` under uvicorn in a thread, on a free loopback port."""
    with serve_app(create_app(settings)) as url:
        yield url


def sqlite_settings(template: Path, directory: Path, **extra: Any) -> Settings:
    path = directory / "agentkeep.db"
    shutil.copyfile(template, path)
    return Settings(database_url=f"sqlite+pysqlite:///{path}", auto_migrate=False, **extra)


@pytest.fixture(scope="module")
def base_url(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve(sqlite_settings(sqlite_template, tmp_path_factory.mktemp("ui"))) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        reason = f"{CHROMIUM} is missing (apt-get install -y chromium; make test does it)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.reportViolation(`${event.violatedDirective} refused ${event.blockedURI || "inline"}`);
});
"""


def watch_policy(context: BrowserContext) -> list[str]:
    """What the Content-Security-Policy refuses on any page of ``context``, as it happens: the
    ``securitypolicyviolation`` events and the browser's console reports of them."""
    violations: list[str] = []

    def report(violation: str) -> None:
        violations.append(violation)

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            violations.append(message.text)

    context.expose_function("reportViolation", report)
    context.add_init_script(REPORT_VIOLATIONS)

    context.on("console", on_console)
    return violations


@pytest.fixture
def page(browser: Browser, base_url: str) -> Iterator[Page]:
    context = browser.new_context(base_url=base_url, viewport=DESKTOP)
    context.set_default_timeout(10_000)
    violations = watch_policy(context)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert errors == [], errors  # no script failed on any page
    assert violations == [], violations  # nothing the pages need is refused by their policy


@pytest.fixture
def api(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{base_url}{API}", timeout=10, trust_env=False) as client:
        yield client


def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def make_agent(api: httpx.Client, name: str, **model_settings: Any) -> dict[str, Any]:
    body = {"name": name, "provider": "echo", "model_settings": model_settings}
    return created(api.post("/agents", json=body))


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def unique(prefix: str) -> str:
    return f"{prefix}-{time.monotonic_ns() % 10**9}"


def reply_bubble(page: Page) -> Locator:
    return page.locator("#messages article.role-assistant").last


def send(page: Page, text: str) -> None:
    box = page.get_by_label("Message", exact=True)
    box.fill(text)
    box.press("Enter")


class TestAgents:
    def test_create_an_agent_after_an_error_shown_next_to_the_name(self, page: Page) -> None:
        name = unique("helper")
        page.goto("/agents")
        page.get_by_role("button", name="Create agent").click()
        error = page.locator("#new-name-error")
        expect(error).to_contain_text("name")
        expect(page.get_by_label("Name")).to_have_attribute("aria-invalid", "true")
        expect(page.get_by_label("Name")).to_be_focused()

        page.get_by_label("Name").fill(name)  # by keyboard: Enter submits the form
        page.get_by_label("Description").fill("Answers questions")
        page.get_by_label("Name").press("Enter")
        expect(page.get_by_role("heading", level=1)).to_have_text(name)

        page.goto("/agents")  # the same name again: the API's conflict, next to the field
        page.get_by_label("Name").fill(name)
        page.get_by_role("button", name="Create agent").click()
        expect(error).to_contain_text("already")
        expect(page.get_by_role("link", name=name, exact=True)).to_have_count(1)

    def test_edit_an_agent_and_see_a_bad_setting_refused(
        self, page: Page, api: httpx.Client
    ) -> None:
        agent = make_agent(api, unique("editable"))
        page.goto(f"/agents/{agent['id']}")
        page.get_by_label("Other model settings (JSON)").fill("{not json")
        page.get_by_role("button", name="Save").click()
        expect(page.locator("#edit-model_settings-error")).to_contain_text("not valid JSON")

        page.get_by_label("Other model settings (JSON)").fill('{"thinking": true}')
        page.get_by_label("Messages of history").fill("12")
        page.get_by_label("Model", exact=True).fill("echo-2")
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_label("Model", exact=True)).to_have_value("echo-2")
        # the field shows what was typed at once: wait for the save itself, not the field
        stored = _eventually(lambda: api.get(f"/agents/{agent['id']}").json(), "model", "echo-2")
        assert stored["model_settings"] == {"thinking": True, "history_messages": 12}

    def test_attach_a_tool_then_detach_it(self, page: Page, api: httpx.Client) -> None:
        agent = make_agent(api, unique("tooluser"))
        tool = unique("clock")
        page.goto("/tools")
        page.get_by_label("Name").fill(tool)
        page.get_by_label("Description").fill("What time it is")
        page.get_by_role("button", name="Add tool").click()
        expect(page.get_by_role("heading", name=tool)).to_be_visible()

        page.goto(f"/agents/{agent['id']}")
        page.get_by_label("Attach a tool").select_option(label=tool)
        page.get_by_role("button", name="Attach", exact=True).click()
        expect(page.get_by_role("button", name=f"Detach {tool}")).to_be_visible()
        attached = api.get(f"/agents/{agent['id']}/tools").json()
        assert [t["name"] for t in attached["items"]] == [tool]

        page.goto("/tools")
        card = page.locator("section.tool", has=page.get_by_role("heading", name=tool))
        expect(card.get_by_role("link", name=agent["name"])).to_be_visible()
        card.get_by_role("button", name=f"Detach {tool} from {agent['name']}").click()
        expect(card.get_by_text("No agent.")).to_be_visible()
        assert api.get(f"/agents/{agent['id']}/tools").json()["items"] == []

    def test_delete_an_agent_after_confirming(self, page: Page, api: httpx.Client) -> None:
        agent = make_agent(api, unique("doomed"))
        page.goto(f"/agents/{agent['id']}")
        page.get_by_role("button", name="Delete agent…").click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_be_visible()
        dialog.get_by_role("button", name="Cancel").click()
        expect(dialog).to_be_hidden()
        assert api.get(f"/agents/{agent['id']}").status_code == 200

        page.get_by_role("button", name="Delete agent…").click()
        dialog.get_by_role("button", name="Delete", exact=True).click()
        expect(page).to_have_url(re.compile(r"/agents$"))
        expect(page.get_by_role("link", name=agent["name"], exact=True)).to_have_count(0)
        assert api.get(f"/agents/{agent['id']}").status_code == 404


def create_from_list(page: Page, path: str, button: str, fields: dict[str, str]) -> str:
    """Fill the list page's create form and send it; the new item's id (from its page)."""
    page.goto(path)
    for label, value in fields.items():
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_role("button", name=button).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(fields["Name"])
    return page.url.rsplit("/", 1)[1]


def refuse_duplicate(page: Page, path: str, button: str, fields: dict[str, str]) -> None:
    """The same name again: the API's conflict, next to the name field, and nothing created."""
    page.goto(path)
    for label, value in fields.items():
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_role("button", name=button).click()
    expect(page.locator("#new-name-error")).to_contain_text("already exists")
    expect(page.get_by_label("Name", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("link", name=fields["Name"], exact=True)).to_have_count(1)


def delete_after_confirming(page: Page, api: httpx.Client, path: str, noun: str) -> None:
    page.goto(path)
    page.get_by_role("button", name=f"Delete {noun}…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert api.get(path).status_code == 200
    page.get_by_role("button", name=f"Delete {noun}…").click()
    dialog.get_by_role("button", name="Delete", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/{noun}s$"))
    assert api.get(path).status_code == 404


class TestConfiguration:
    """Personas, modules and workflows: made, changed and removed from their pages."""

    def test_a_persona_is_created_edited_refused_twice_and_deleted(
        self, page: Page, api: httpx.Client
    ) -> None:
        fields = {"Name": unique("guide"), "Prompt template": "You guide visitors."}
        persona_id = create_from_list(page, "/personas", "Create persona", fields)
        page.get_by_label("First message", exact=True).fill("Welcome!")
        page.get_by_label("Active", exact=True).uncheck()
        with page.expect_navigation():  # saved: the page reloads
            page.get_by_role("button", name="Save").click()
        stored = _eventually(
            lambda: api.get(f"/personas/{persona_id}").json(), "first_message", "Welcome!"
        )
        assert stored["is_active"] is False
        assert stored["template"] == "You guide visitors."

        refuse_duplicate(page, "/personas", "Create persona", fields)
        delete_after_confirming(page, api, f"/personas/{persona_id}", "persona")

    def test_a_module_is_created_after_a_bad_trigger_edited_refused_twice_and_deleted(
        self, page: Page, api: httpx.Client
    ) -> None:
        fields = {"Name": unique("refunds"), "Type": "instructions", "Trigger": "(refund"}
        page.goto("/modules")
        for label, value in fields.items():
            page.get_by_label(label, exact=True).fill(value)
        page.get_by_role("button", name="Create module").click()
        expect(page.locator("#new-trigger_pattern-error")).to_contain_text("regular expression")
        expect(page.get_by_label("Trigger", exact=True)).to_be_focused()

        fields["Trigger"] = "(?i)refund"
        module_id = create_from_list(page, "/modules", "Create module", fields)
        page.get_by_label("When it runs").select_option("IMMEDIATE")
        page.get_by_label("Priority", exact=True).fill("5")
        page.get_by_label("Content", exact=True).fill("Refunds take 30 days.")
        with page.expect_navigation():  # saved: the page reloads
            page.get_by_role("button", name="Save").click()
        stored = _eventually(lambda: api.get(f"/modules/{module_id}").json(), "stage_priority", 5)
        assert stored["execution_context"] == "IMMEDIATE"
        assert stored["content"] == "Refunds take 30 days."

        refuse_duplicate(page, "/modules", "Create module", fields)
        delete_after_confirming(page, api, f"/modules/{module_id}", "module")

    def test_a_workflow_is_created_edited_after_bad_json_refused_twice_and_deleted(
        self, page: Page, api: httpx.Client
    ) -> None:
        fields = {"Name": unique("pipeline"), "Steps (JSON list)": '["triage", "support"]'}
        workflow_id = create_from_list(page, "/workflows", "Create workflow", fields)
        expect(page.get_by_role("listitem").filter(has_text="support")).to_have_count(1)
        page.get_by_label("Steps (JSON list)").fill('["triage",')
        page.get_by_role("button", name="Save").click()
        expect(page.locator("#edit-steps-error")).to_contain_text("not valid JSON")
        page.get_by_label("Steps (JSON list)").fill('["triage", "support", "review"]')
        with page.expect_navigation():  # saved: the page reloads
            page.get_by_role("button", name="Save").click()
        stored = _eventually(
            lambda: api.get(f"/workflows/{workflow_id}").json(),
            "steps",
            ["triage", "support", "review"],
        )
        assert stored["name"] == fields["Name"]

        refuse_duplicate(page, "/workflows", "Create workflow", fields)
        delete_after_confirming(page, api, f"/workflows/{workflow_id}", "workflow")


class TestChat:
    def test_tokens_arrive_before_the_reply_is_complete_and_stay_after_reload(
        self, page: Page, api: httpx.Client
    ) -> None:
        agent = make_agent(api, unique("streamer"), token_delay_ms=80, thinking=True)
        page.goto(f"/chat/{agent['id']}")
        words = "one two three four five six seven eight nine ten"
        send(page, words)
        reply = reply_bubble(page)
        content = reply.locator(".content")
        expect(content).not_to_have_text("")
        expect(reply).to_have_class(re.compile("status-streaming"))  # still streaming
        partial = content.text_content() or ""
        assert "ten" not in partial
        page.wait_for_function(
            "n => document.querySelector('#messages article.role-assistant:last-child "
            ".content').textContent.length > n",
            arg=len(partial),
        )
        expect(reply).to_have_class(re.compile("status-complete"), timeout=15_000)
        expect(content).to_contain_text(words)
        expect(reply.locator(".tokens")).to_contain_text("out tokens")
        thinking = reply.locator("details.thinking")
        expect(thinking).to_be_visible()
        assert thinking.get_attribute("open") is None  # collapsed
        expect(page).to_have_url(re.compile(r"\?conversation="))

        page.reload()
        expect(page.locator("#messages article.role-user .content")).to_have_text(words)
        expect(reply_bubble(page).locator(".content")).to_contain_text(words)
        expect(reply_bubble(page).locator(".tokens")).to_contain_text("out tokens")

    def test_stop_keeps_the_partial_reply_marked_cancelled(
        self, page: Page, api: httpx.Client
    ) -> None:
        agent = make_agent(api, unique("stoppable"), token_delay_ms=150)
        page.goto(f"/chat/{agent['id']}")
        send(page, " ".join(f"word{n}" for n in range(40)))
        reply = reply_bubble(page)
        expect(reply.locator(".content")).to_contain_text("word1 ")
        page.get_by_role("button", name="Stop").click()
        expect(reply.locator(".badge")).to_have_text("cancelled")
        expect(page.get_by_role("button", name="Send")).to_be_enabled()

        conversation_id = page.url.split("conversation=")[1]
        deadline = time.monotonic() + 10
        while True:  # the server finalises the reply once it sees the client go
            stored = api.get(f"/conversations/{conversation_id}/messages").json()["items"]
            if stored[-1]["status"] == "cancelled" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert stored[-1]["status"] == "cancelled"
        assert "word1" in stored[-1]["content"]
        assert "word39" not in stored[-1]["content"]

        page.reload()
        reply = reply_bubble(page)
        expect(reply.locator(".badge")).to_have_text("cancelled")
        expect(reply.locator(".content")).to_contain_text("word1")

    def test_a_script_in_a_message_shows_as_text(self, page: Page, api: httpx.Client) -> None:
        agent = make_agent(api, unique("escaper"))
        page.goto(f"/chat/{agent['id']}")
        text = "<script>window.pwned = 1</script><b>bold</b>"
        send(page, text)
        expect(reply_bubble(page)).to_have_class(re.compile("status-complete"))
        for _ in range(2):  # as it streamed, then as the server renders it
            expect(page.locator("#messages article.role-user .content")).to_have_text(text)
            expect(reply_bubble(page).locator(".content")).to_contain_text(text)
            assert page.locator("#messages .content b").count() == 0
            assert page.evaluate("window.pwned") is None
            page.reload()
        # the next reply is given that message as a memory, shown under it, as text too
        send(page, "which script made window pwned and what was bold?")
        expect(reply_bubble(page)).to_have_class(re.compile("status-complete"))
        for _ in range(2):  # as message_end listed it, then from the stored reply's metadata
            remembered = reply_bubble(page).locator("details.remembered")
            remembered.locator("summary").click()
            expect(remembered.locator("summary")).to_have_text(re.compile(r"Remembered \(\d+\)"))
            expect(remembered.locator(".memory-text").first).to_have_text(text)
            expect(remembered.locator(".score").first).to_have_text(re.compile(r"^[01]\.\d\d$"))
            assert page.locator("#messages b").count() == 0
            assert page.evaluate("window.pwned") is None
            page.reload()

    def test_older_history_loads_on_scroll(self, page: Page, api: httpx.Client) -> None:
        agent = make_agent(api, unique("historian"))
        started = created(api.post("/conversations/start", json={"agent_id": agent["id"]}))
        conversation_id = started["conversation"]["id"]
        for n in range(1, 46):
            body = {"role": "user", "content": f"message number {n}."}
            created(api.post(f"/conversations/{conversation_id}/message", json=body))
        page.goto(f"/chat/{agent['id']}?conversation={conversation_id}")
        expect(page.get_by_text("message number 45.")).to_be_visible()
        expect(page.get_by_text("message number 15.", exact=True)).to_have_count(0)
        page.locator("#messages").evaluate("node => { node.scrollTop = 0; }")
        expect(page.get_by_text("message number 15.", exact=True)).to_have_count(1)
        page.locator("#messages").evaluate("node => { node.scrollTop = 0; }")
        expect(page.get_by_text("message number 1.", exact=True)).to_have_count(1)
        assert page.locator("#messages article").count() == 45

    def test_an_api_error_shows_next_to_the_message(self, page: Page, api: httpx.Client) -> None:
        agent = make_agent(api, unique("vanishing"))
        page.goto(f"/chat/{agent['id']}")
        api.delete(f"/agents/{agent['id']}")
        send(page, "are you there?")
        expect(page.locator("#message-input-error")).to_contain_text("not found")
        expect(page.get_by_label("Message", exact=True)).to_have_value("are you there?")  # not lost


TIMES = """() => {
  const format = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  return [...document.querySelectorAll("time")].map((node) => ({
    shown: node.textContent,
    expected: format.format(new Date(node.dateTime)),
    title: node.title,
  }));
}"""


class TestTimes:
    def test_streamed_and_stored_times_read_alike_in_the_browsers_locale_and_zone(
        self, browser: Browser, base_url: str, api: httpx.Client
    ) -> None:
        agent = make_agent(api, unique("clockwatcher"))
        context = browser.new_context(
            base_url=base_url, viewport=DESKTOP, locale="de-DE", timezone_id="Asia/Tokyo"
        )
        context.set_default_timeout(10_000)
        page = context.new_page()
        try:
            page.goto(f"/chat/{agent['id']}")
            send(page, "what time is it?")
            expect(reply_bubble(page)).to_have_class(re.compile("status-complete"))
            streamed = page.evaluate(TIMES)
            page.reload()
            expect(reply_bubble(page).locator(".content")).to_contain_text("what time is it?")
            stored = page.evaluate(TIMES)
            page.goto("/agents")
            listed = page.evaluate(TIMES)
        finally:
            context.close()
        assert len(streamed) >= 2
        assert len(stored) >= 2
        assert listed
        for time_ in streamed + stored + listed:
            assert time_["shown"] == time_["expected"], time_
            assert "UTC" not in time_["shown"], time_  # not the server's fallback
            assert "GMT+9" in time_["title"], time_  # the full moment, in the reader's zone


FONTS = ("Noto Color Emoji", "Noto Sans CJK")
"""The families ``fonts-noto-color-emoji`` and ``fonts-noto-cjk`` install (``make test`` does)."""

GLYPHS = """(selector) => {
  // Each character drawn alone, in the font the message is shown in, against a character no
  // font has: a missing glyph is drawn as that same box (tofu), or not at all.
  const family = getComputedStyle(document.querySelector(selector)).fontFamily;
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 64;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.font = `40px ${family}`;
  context.textBaseline = "middle";
  const drawn = (text) => {
    context.clearRect(0, 0, 64, 64);
    context.fillText(text, 4, 32);
    return Array.from(context.getImageData(0, 0, 64, 64).data).join(",");
  };
  const blank = drawn("");
  const tofu = [drawn("\\u{10FFFD}"), drawn("\\u{10FFFC}")];
  const text = document.querySelector(selector).textContent;
  return {
    tofuIsOneBox: tofu[0] === tofu[1],
    glyphs: Array.from(text).filter((c) => c.trim()).map((c) => ({
      char: c,
      ink: drawn(c) !== blank,
      tofu: drawn(c) === tofu[0],
    })),
  };
}"""


def fonts_missing() -> list[str]:
    listed = subprocess.run(
        ["fc-list", ":", "family"], capture_output=True, text=True, check=False
    ).stdout
    return [family for family in FONTS if family not in listed]


class TestScripts:
    def test_japanese_and_emoji_are_drawn_not_boxes(self, page: Page, api: httpx.Client) -> None:
        missing = fonts_missing() if shutil.which("fc-list") else list(FONTS)
        if missing:
            reason = f"fonts missing: {missing} (apt-get install -y fonts-noto-color-emoji "
            reason += "fonts-noto-cjk; make test does it)"
            if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
                pytest.fail(reason)
            pytest.skip(reason)
        agent = make_agent(api, unique("polyglot"))
        page.goto(f"/chat/{agent['id']}")
        send(page, "こんにちは 👋")
        expect(reply_bubble(page)).to_have_class(re.compile("status-complete"))
        for _ in range(2):  # as it streamed, then as the server renders it
            found = page.evaluate(GLYPHS, "#messages article.role-user .content")
            assert found["tofuIsOneBox"], "this browser does not draw a missing glyph as one box"
            assert [g["char"] for g in found["glyphs"]] == list("こんにちは👋")
            for glyph in found["glyphs"]:
                assert glyph["ink"], glyph
                assert not glyph["tofu"], glyph
            page.reload()


@pytest.fixture(scope="module")
def showcase(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, Any], str]]:
    settings = sqlite_settings(sqlite_template, tmp_path_factory.mktemp("showcase"))
    with (
        serve(settings) as url,
        httpx.Client(base_url=f"{url}{API}", timeout=10, trust_env=False) as api,
    ):
        schema = {"type": "object", "properties": {"timezone": {"type": "string"}}}
        clock = created(
            api.post(
                "/tools",
                json={
                    "name": "current_time",
                    "description": "The current date and time in a time zone",
                    "parameters": schema,
                },
            )
        )
        created(api.post("/tools", json={"name": "lookup_order", "description": "An order"}))
        agent = created(
            api.post(
                "/agents",
                json={
                    "name": "support-bot",
                    "description": "Answers customers' questions",
                    "provider": "echo",
                    "model_settings": {"thinking": True, "tool_call": "current_time"},
                },
            )
        )
        planner = make_agent(api, "planner")
        api.post(f"/agents/{agent['id']}/tools/{clock['id']}")
        persona = created(
            api.post(
                "/personas",
                json={
                    "name": "patient-support",
                    "description": "Calm, brief, friendly",
                    "template": "You are a patient support agent. Answer in two sentences.",
                    "first_message": "Hi! How can I help?",
                    "mode": "assistant",
                },
            )
        )
        api.patch(f"/agents/{agent['id']}", json={"persona_id": persona["id"]})
        created(api.post("/personas", json={"name": "storyteller", "template": "You tell."}))
        tracker = created(
            api.post(
                "/modules",
                json={
                    "name": "follow-up",
                    "type": "summary",
                    "description": "Notes whether the customer needs a follow-up",
                    "content": "Does the customer need a follow-up? Answer yes or no.",
                    "execution_context": "POST_RESPONSE",
                    "requires_ai_inference": True,
                    "trigger_pattern": "(?i)order|refund",
                },
            )
        )
        created(
            api.post(
                "/modules",
                json={
                    "name": "refunds",
                    "type": "instructions",
                    "content": "Refunds are possible within 30 days of purchase.",
                    "trigger_pattern": "(?i)refund|money back",
                    "execution_context": "IMMEDIATE",
                    "stage_priority": 10,
                },
            )
        )
        created(
            api.post(
                "/workflows",
                json={
                    "name": "triage-then-answer",
                    "description": "Plan the request, then hand it to support",
                    "steps": ["planner", "support-bot"],
                },
            )
        )
        conversation_id = turn(api, agent["id"], "What time is it?")
        turn(api, planner["id"], "Plan my Monday: gym, groceries, the report.")
        body = {"value": {"step": "answered", "follow_up": False}}
        api.put(f"/conversations/{conversation_id}/state/progress", json=body)
        scoped = f"/conversations/{conversation_id}/state/output?module_id={tracker['id']}"
        api.put(scoped, json={"value": "no"})
        expense_bot(api, "coffee", user="ana")
        yield url, agent, conversation_id


def turn(api: httpx.Client, agent_id: str, content: str) -> str:
    body = {"agent_id": agent_id, "user_id": "web", "content": content}
    with api.stream("POST", "/streaming/start", json=body) as response:
        text = "".join(response.iter_text())
    found: str = re.findall(r'"conversation_id": "([^"]+)"', text)[0]
    return found


def expense_bot(api: httpx.Client, word: str, *, user: str = "web-user") -> str:
    """A chat bot's conversation without an agent: the user bought ``word`` for 300, the data
    kept, the account asked in a bot message and answered by a reply to it."""
    said, asked = time.monotonic_ns(), time.monotonic_ns() + 1  # platform ids, unique here
    first = {"role": "user", "content": f"bought {word} for 300", "message_id": said}
    body = {"user_id": user, "chat_id": "team", "title": f"{word} expense", "message": first}
    cid: str = created(api.post("/conversations/start", json=body))["conversation"]["id"]
    data = {"data_type": "partial", "content": {"amount": 300, "item": word}}
    created(api.post(f"/conversations/{cid}/data", json=data))
    question = {
        "agent_name": "ExpenseAgent",
        "question": "From which account?",
        "missing_fields": ["account"],
        "message_id": asked,
    }
    created(api.post(f"/conversations/{cid}/questions", json=question))
    bot = {"role": "assistant", "content": "From which account?", "message_id": asked}
    created(api.post(f"/conversations/{cid}/message", json=bot))
    reply = {"role": "user", "content": "cash", "reply_to_message_id": asked}
    created(api.post(f"/conversations/{cid}/message", json=reply))
    return cid


class TestConversations:
    def test_find_a_conversation_by_its_text_and_read_its_workflow(
        self, page: Page, api: httpx.Client
    ) -> None:
        word = unique("espresso")
        wanted = expense_bot(api, word, user=unique("ana"))
        expense_bot(api, unique("rent"), user=unique("bo"))
        page.goto("/conversations")
        page.get_by_label("Messages containing").fill(word)
        page.get_by_role("button", name="Show").click()
        expect(page.locator("table.conversations tbody tr")).to_have_count(1)
        expect(page.locator("table.conversations")).to_contain_text(f"user: bought {word}")
        page.get_by_role("link", name=f"{word} expense").click()

        expect(page).to_have_url(re.compile(f"/conversations/{wanted}$"))
        expect(page.locator("#data")).to_contain_text('"amount": 300')
        questions = page.locator("#questions")
        expect(questions).to_contain_text("From which account?")
        expect(questions.locator(".badge")).to_have_text("answered")
        expect(questions).to_contain_text("cash")
        expect(page.locator("#session")).to_contain_text("this one")

    def test_complete_then_see_a_refused_change_next_to_its_button(
        self, page: Page, api: httpx.Client
    ) -> None:
        cid = expense_bot(api, unique("tea"))
        page.goto(f"/conversations/{cid}")
        status = page.locator(".heading .badge")
        page.get_by_role("button", name="Abandon").click()
        expect(status).to_have_text("abandoned")
        page.get_by_role("button", name="Resume").click()
        expect(status).to_have_text("active")

        page.get_by_role("button", name="Complete").click()  # no reference: refused at the field
        expect(page.locator("#complete-external_ref-error")).not_to_be_empty()
        page.get_by_label("External reference").fill("row 7")
        page.get_by_label("Final data (JSON, optional)").fill('{"account": "cash"}')
        page.get_by_role("button", name="Complete").click()
        expect(status).to_have_text("completed")
        expect(page.locator("#status")).to_contain_text("row 7")

        page.get_by_role("button", name="Abandon").click()  # a completed conversation stays so
        refused = page.locator("#workflow form").nth(2).locator('[data-error-for="status"]')
        expect(refused).to_contain_text("completed")
        expect(status).to_have_text("completed")
        stored = api.get(f"/conversations/{cid}").json()
        assert (stored["status"], stored["external_ref"]) == ("completed", "row 7")
        assert api.get(f"/conversations/{cid}/data/complete").json()["content"] == {
            "account": "cash"
        }


class TestScreens:
    """Every page, on a store of its own seeded as a small deployment would be."""

    def test_every_page_renders_and_is_saved_as_a_screenshot(
        self, browser: Browser, showcase: tuple[str, dict[str, Any], str]
    ) -> None:
        url, agent, conversation_id = showcase
        context = browser.new_context(base_url=url, viewport=DESKTOP)
        page = context.new_page()
        try:
            pages = {
                "home": ("/", "Home"),
                "agents": ("/agents", "Agents"),
                "agent": (f"/agents/{agent['id']}", agent["name"]),
                "chat": (f"/chat/{agent['id']}?conversation={conversation_id}", agent["name"]),
                "tools": ("/tools", "Tools"),
                "conversations": ("/conversations", "Conversations"),
                "conversation": (f"/conversations/{conversation_id}", "What time is it?"),
                "personas": ("/personas", "Personas"),
                "modules": ("/modules", "Modules"),
                "workflows": ("/workflows", "Workflows"),
            }
            for name, (path, heading) in pages.items():
                page.goto(path)
                expect(page.get_by_role("heading", level=1)).to_have_text(heading)
                screenshot(page, name)
            page.goto(f"/chat/{agent['id']}?conversation={conversation_id}")
            expect(page.locator(".tool-call")).to_contain_text("current_time")
            expect(page.locator(".tool-result")).to_contain_text("Result")
            page.goto(f"/conversations/{conversation_id}")
            expect(page.locator("#state")).to_contain_text("module follow-up")
        finally:
            context.close()

    def test_a_phone_screen_has_no_horizontal_scroll(
        self, browser: Browser, showcase: tuple[str, dict[str, Any], str]
    ) -> None:
        url, agent, conversation_id = showcase
        context = browser.new_context(base_url=url, viewport=PHONE, is_mobile=True)
        phone = context.new_page()
        try:
            for path in (
                "/",
                "/agents",
                f"/agents/{agent['id']}",
                "/chat",
                f"/chat/{agent['id']}?conversation={conversation_id}",
                "/tools",
                "/conversations",
                f"/conversations/{conversation_id}",
                "/personas",
                "/modules",
                "/workflows",
            ):
                phone.goto(path)
                width = phone.evaluate("document.documentElement.scrollWidth")
                assert width <= PHONE["width"], f"{path} is {width}px wide"
            phone.goto(f"/chat/{agent['id']}?conversation={conversation_id}")
            box = phone.get_by_label("Message", exact=True)
            expect(box).to_be_visible()
            for control in (box, phone.get_by_role("button", name="Send")):
                bounds = control.bounding_box()  # where it is on the first screen, unscrolled
                assert bounds is not None
                assert phone.evaluate("window.scrollY") == 0
                assert bounds["y"] >= 0, bounds
                assert bounds["y"] + bounds["height"] <= PHONE["height"], bounds
            screenshot(phone, "chat-phone")
        finally:
            context.close()


KEY = "sesame-open-the-door"

SOCKET_TURN = """
async (conversationId) => new Promise((resolve, reject) => {
  const socket = new WebSocket(`ws://${location.host}/api/v1/streaming/ws/${conversationId}`);
  const events = [];
  socket.onopen = () => socket.send(JSON.stringify({type: "message", content: "over the socket"}));
  socket.onmessage = (message) => {
    const frame = JSON.parse(message.data);
    events.push(frame.event);
    if (frame.event === "message_end" || frame.event === "error") {
      socket.close();
      resolve(events);
    }
  };
  socket.onclose = (event) => resolve([...events, `closed ${event.code}`]);
  socket.onerror = () => reject(new Error("the WebSocket failed"));
})
"""


INJECT = """() => {
  const script = document.createElement("script");
  script.textContent = "window.injected = 1";
  document.body.append(script);
  const image = '<img src="/static/none.png" onerror="window.injected = 2">';
  document.body.insertAdjacentHTML("beforeend", image);
}"""


class TestApiKeys:
    def test_sign_in_then_work_through_the_api_with_the_session_never_the_key(
        self, browser: Browser, sqlite_template: Path, tmp_path: Path
    ) -> None:
        settings = sqlite_settings(sqlite_template, tmp_path, api_keys=[SecretStr(KEY)])
        with serve(settings) as url:
            context = browser.new_context(base_url=url, viewport=DESKTOP)
            context.set_default_timeout(10_000)
            violations = watch_policy(context)
            page = context.new_page()
            try:
                page.goto("/agents")
                expect(page).to_have_url(re.compile(r"/login\?next="))
                page.get_by_label("API key").fill("wrong")
                page.get_by_role("button", name="Sign in").click()
                expect(page.locator("#login-api_key-error")).to_have_text(
                    "This API key is not valid."
                )
                page.get_by_label("API key").fill(KEY)
                page.get_by_role("button", name="Sign in").click()
                expect(page.get_by_role("heading", level=1)).to_have_text("Agents")
                assert KEY not in page.content()
                assert all(KEY not in cookie["value"] for cookie in context.cookies())
                page.get_by_label("Name").fill("keyed")
                page.get_by_role("button", name="Create agent").click()  # with the cookie
                expect(page.get_by_role("heading", level=1)).to_have_text("keyed")
                page.get_by_role("link", name="Chat with this agent").click()
                send(page, "hello with a session")  # streamed over SSE
                expect(reply_bubble(page)).to_have_class(re.compile("status-complete"))
                assert KEY not in page.content()

                conversation_id = page.url.split("conversation=")[1]
                events = page.evaluate(SOCKET_TURN, conversation_id)  # ws: allowed, cookie taken
                assert events[0] == "message_start", events
                assert events[-1] == "message_end", events

                page.get_by_role("button", name="Sign out").click()
                expect(page).to_have_url(re.compile(r"/login"))
                assert violations == [], violations
            finally:
                context.close()

    def test_the_policy_refuses_a_script_injected_into_a_page(
        self, browser: Browser, base_url: str
    ) -> None:
        context = browser.new_context(base_url=base_url, viewport=DESKTOP)
        violations = watch_policy(context)
        page = context.new_page()
        try:
            page.goto("/")
            page.evaluate(INJECT)
            page.wait_for_timeout(200)
            assert page.evaluate("window.injected") is None
            assert any("script-src" in v for v in violations), violations
        finally:
            context.close()


def _eventually(read: Callable[[], dict[str, Any]], key: str, value: Any) -> dict[str, Any]:
    """``read()`` once its ``key`` is ``value`` (or after 10 s, whatever it is then)."""
    deadline = time.monotonic() + 10
    found = read()
    while found.get(key) != value and time.monotonic() < deadline:
        time.sleep(0.05)
        found = read()
    return found


class TestApiDocsOffline:
    """The API docs render with every request off this server refused, as on a machine without
    internet: their scripts, styles and fonts come from the server itself (ReDoc's footer still
    asks a CDN for its maker's logo, an image it does without)."""

    @pytest.mark.parametrize(
        ("path", "rendered"),
        [("/docs", ".swagger-ui .opblock"), ("/redoc", "[data-section-id]")],
    )
    def test_they_render_without_the_network(
        self, browser: Browser, base_url: str, path: str, rendered: str
    ) -> None:
        context = browser.new_context(base_url=base_url, viewport=DESKTOP)
        violations = watch_policy(context)
        elsewhere: list[str] = []

        def only_this_server(route: Any) -> None:
            if route.request.url.startswith(base_url):
                route.continue_()
            else:
                if route.request.resource_type != "image":
                    elsewhere.append(route.request.url)
                route.abort()

        try:
            context.route("**/*", only_this_server)
            docs = context.new_page()
            docs.goto(path)
            expect(docs.locator(rendered).first).to_be_visible(timeout=15_000)
            expect(docs.get_by_text("agentkeep").first).to_be_visible()
            assert elsewhere == []
            # the one request to another site (ReDoc's logo) is refused by the page's policy
            assert all("cdn.redoc.ly" in violation for violation in violations), violations
        finally:
            context.close()


class TestConfigPage:
    """Export the store as a project file, then import one: preview the changes, confirm, sync."""

    @pytest.fixture
    def store_url(self, sqlite_template: Path, tmp_path: Path) -> Iterator[str]:
        (tmp_path / "store").mkdir()
        with serve(sqlite_settings(sqlite_template, tmp_path / "store")) as url:
            yield url  # a store of its own: the import must not change the other tests' agents

    @pytest.fixture
    def config_page(self, browser: Browser, store_url: str) -> Iterator[Page]:
        context = browser.new_context(base_url=store_url, viewport=DESKTOP, accept_downloads=True)
        context.set_default_timeout(10_000)
        violations = watch_policy(context)
        opened = context.new_page()
        errors: list[str] = []
        opened.on("pageerror", lambda error: errors.append(str(error)))
        yield opened
        context.close()
        assert errors == [], errors
        assert violations == [], violations

    def export(self, page: Page) -> dict[str, Any]:
        with page.expect_download() as download:
            page.get_by_role("button", name="Export").click()
        assert download.value.suggested_filename == "agentkeep-project.json"
        exported: dict[str, Any] = json.loads(Path(download.value.path()).read_text("utf-8"))
        return exported

    def preview(self, page: Page, file: Path) -> None:
        page.get_by_label("Project file (JSON)").set_input_files(str(file))
        page.get_by_role("button", name="Preview").click()

    def test_export_then_import_with_a_preview_of_the_changes(
        self, config_page: Page, store_url: str, tmp_path: Path
    ) -> None:
        page = config_page
        page.goto("/config")
        expect(page.get_by_role("heading", level=1)).to_have_text("Config")
        assert self.export(page).get("agents", []) == []

        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({"agents": [{"name": "a", "tools": ["missing"]}]}))
        self.preview(page, bad)
        expect(page.locator("#config-import [data-error-for='']")).to_contain_text(
            "agents[0].tools[0]"
        )
        expect(page.locator("#config-preview")).to_be_hidden()
        broken = tmp_path / "broken.json"
        broken.write_text("{not json")
        self.preview(page, broken)
        expect(page.locator("#config-file-error")).to_contain_text("broken.json is not valid JSON")

        self.preview(page, PROJECT)
        rows = page.locator("#config-preview-rows tr")
        expect(rows.filter(has_text="bookkeeper")).to_contain_text("create")
        expect(rows.filter(has_text="lookup_rate")).to_contain_text("tools")
        expect(page.locator("#config-preview-summary")).to_contain_text("changes to make")
        screenshot(page, "config")
        with httpx.Client(base_url=store_url, trust_env=False) as client:
            assert client.get(f"{API}/agents").json()["items"] == []  # a preview writes nothing
            page.get_by_role("button", name="Sync").click()
            expect(page.locator("#config-result")).to_contain_text(
                f"Synced {PROJECT.name}: {rows.count()} changes written."
            )
            names = sorted(a["name"] for a in client.get(f"{API}/agents").json()["items"])
            assert names == ["bookkeeper", "helper"]
        expect(page.locator("#config-preview")).to_be_hidden()

        self.preview(page, PROJECT)  # the store now declares what the file does
        expect(page.locator("#config-preview-summary")).to_contain_text("no changes")
        expect(page.get_by_role("button", name="Sync")).to_be_hidden()
        exported = self.export(page)
        assert [a["name"] for a in exported["agents"]] == ["bookkeeper", "helper"]
        page.set_viewport_size(PHONE)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
