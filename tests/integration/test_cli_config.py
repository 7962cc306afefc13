"""``agentkeep config sync|diff|export|schema`` and ``serve --config``, run in-process on SQLite
and PostgreSQL (``AGENTKEEP_DATABASE_URL``); ``serve`` with ``uvicorn.run`` recorded, not served."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest

from agentkeep.project import project_schema, validate_project
from cli_support import run, said

EXAMPLES = Path(__file__).parents[2] / "examples"
EXAMPLE = EXAMPLES / "project.json"

pytestmark = pytest.mark.usefixtures("clean_environment")


def write(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


@pytest.mark.usefixtures("database_url")
class TestConfigCommands:
    def test_sync_prints_a_table_then_a_second_sync_changes_nothing(self) -> None:
        first = run("config", "sync", str(EXAMPLE))
        assert first.exit_code == 0, first.output
        assert "agents" in said(first)
        assert "6 change(s) written" in said(first)
        second = run("config", "sync", str(EXAMPLE))
        assert second.exit_code == 0, second.output
        assert "0 change(s) written" in said(second)

    def test_dry_run_writes_nothing(self) -> None:
        result = run("config", "sync", "--dry-run", str(EXAMPLE))
        assert result.exit_code == 0, result.output
        assert "dry run: nothing written" in said(result)
        assert json.loads(run("config", "export").stdout) == {}

    def test_export_round_trips_through_sync_and_diff_sees_nothing(self, tmp_path: Path) -> None:
        run("config", "sync", str(EXAMPLE))
        out = tmp_path / "exported.json"
        result = run("config", "export", "--output", str(out))
        assert result.exit_code == 0, result.output
        exported = json.loads(out.read_text())
        assert [a["name"] for a in exported["agents"]] == ["bookkeeper", "helper"]
        diff = run("config", "diff", str(out))
        assert "no changes" in said(diff)
        assert "0 change(s) written" in said(run("config", "sync", str(out)))

    def test_export_as_yaml_syncs_back_unchanged(self, tmp_path: Path) -> None:
        run("config", "sync", str(EXAMPLE))
        out = tmp_path / "exported.yaml"
        assert run("config", "export", "-o", str(out)).exit_code == 0
        assert "bookkeeper" in out.read_text()
        assert "0 change(s) written" in said(run("config", "sync", str(out)))

    def test_text_yaml_reads_as_a_line_break_exports_to_yaml_unchanged(
        self, tmp_path: Path
    ) -> None:
        breaks = "next\x85line \u2028sep\u2029 end"
        project = {
            "personas": [{"name": "p", "template": breaks, "description": "a\x85"}],
            "tools": [{"name": "t", "parameters": {"properties": {"k\x85": {"title": breaks}}}}],
        }
        assert run("config", "sync", str(write(tmp_path / "p.json", project))).exit_code == 0
        out = tmp_path / "exported.yaml"
        assert run("config", "export", "-o", str(out)).exit_code == 0
        assert "no changes" in said(run("config", "diff", str(out)))
        assert "0 change(s) written" in said(run("config", "sync", str(out)))

    def test_diff_names_what_changes(self, tmp_path: Path) -> None:
        run("config", "sync", str(EXAMPLE))
        document = json.loads(EXAMPLE.read_text())
        document["agents"][1]["model"] = "gpt-4o-mini"
        document["tools"].append({"name": "convert"})
        result = run("config", "diff", "--prune", str(write(tmp_path / "p.json", document)))
        assert result.exit_code == 0, result.output
        text = said(result)
        assert "bookkeeper model" in text
        assert "convert" in text

    def test_prune_deletes_what_the_file_leaves_out(self, tmp_path: Path) -> None:
        run("config", "sync", str(EXAMPLE))
        small = write(tmp_path / "small.json", {"agents": [{"name": "helper", "provider": "echo"}]})
        result = run("config", "sync", "--prune", str(small))
        assert result.exit_code == 0, result.output
        assert "deleted" in said(result)
        assert json.loads(run("config", "export").stdout) == {
            "agents": [{"name": "helper", "provider": "echo"}]
        }

    @pytest.mark.parametrize(
        ("content", "expected"),
        [
            (b'{"agents": [', "is not valid JSON"),
            (b"\xff\xfe{}", "is not UTF-8"),
            (b'{"agents": [{"name": "a", "tools": ["missing"]}]}', "agents[0].tools[0]"),
            (b'{"tools": [{"name": "t"}, {"name": "t"}]}', "tools[1].name"),
            (b'{"agents": [{"name": 5}]}', "agents[0].name"),
        ],
    )
    def test_a_bad_file_exits_2_naming_file_and_path_and_writes_nothing(
        self, tmp_path: Path, content: bytes, expected: str
    ) -> None:
        bad = tmp_path / "bad.json"
        bad.write_bytes(content)
        result = run("config", "sync", str(bad))
        assert result.exit_code == 2, result.output
        assert str(bad) in said(result)
        assert expected in said(result)
        assert json.loads(run("config", "export").stdout) == {}

    def test_a_file_over_the_limit_is_refused(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("AGENTKEEP_MAX_REQUEST_BYTES", "2048")
        big = write(tmp_path / "big.json", {"tools": [{"name": f"t{i}"} for i in range(500)]})
        result = run("config", "sync", str(big))
        assert result.exit_code == 2
        assert "at most 2,048" in said(result)

    def test_a_missing_file_exits_2(self, tmp_path: Path) -> None:
        result = run("config", "sync", str(tmp_path / "nowhere.json"))
        assert result.exit_code == 2
        assert "cannot be read" in said(result)


def test_schema_prints_the_json_schema_and_the_example_points_at_it() -> None:
    result = run("config", "schema")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == project_schema()
    assert json.loads((EXAMPLES / "project.schema.json").read_text()) == project_schema()


class FakeUvicorn:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, app: Any, **options: Any) -> None:
        self.calls.append({"app": app, **options})


@pytest.fixture
def uvicorn_run(monkeypatch: pytest.MonkeyPatch) -> FakeUvicorn:
    fake = FakeUvicorn()
    monkeypatch.setattr("uvicorn.run", fake)
    serve_module = importlib.import_module("agentkeep.cli.serve")
    monkeypatch.setattr(serve_module, "check_free", lambda host, port: None)
    return fake


@pytest.mark.usefixtures("database_url")
class TestServeWithConfig:
    def test_serve_syncs_the_file_before_it_starts(self, uvicorn_run: FakeUvicorn) -> None:
        result = run("serve", "--port", "8124", "--config", str(EXAMPLE))
        assert result.exit_code == 0, result.output
        assert f"config: synced {EXAMPLE} (" in said(result)
        assert len(uvicorn_run.calls) == 1
        names = [a["name"] for a in json.loads(run("config", "export").stdout)["agents"]]
        assert names == ["bookkeeper", "helper"]
        again = run("serve", "--port", "8124", "--config", str(EXAMPLE))
        assert "0 created, 0 updated" in said(again)

    def test_a_bad_file_stops_serve_before_the_server_starts(
        self, uvicorn_run: FakeUvicorn, tmp_path: Path
    ) -> None:
        bad = write(tmp_path / "bad.json", {"agents": [{"name": "a", "persona": "nobody"}]})
        result = run("serve", "--config", str(bad))
        assert result.exit_code == 2
        assert "agents[0].persona" in said(result)
        assert uvicorn_run.calls == []


def test_serve_with_a_config_on_the_in_memory_store_hands_the_file_to_the_server(
    monkeypatch: pytest.MonkeyPatch, uvicorn_run: FakeUvicorn
) -> None:
    monkeypatch.setenv("AGENTKEEP_ENABLE_DB", "false")
    result = run("serve", "--config", str(EXAMPLE))
    assert result.exit_code == 0, result.output
    assert f"nothing is kept: the store is in memory, loaded from {EXAMPLE}" in said(result)
    assert "config: synced" not in said(result)  # the server fills its own store as it starts
    [call] = uvicorn_run.calls
    assert call["app"].state.settings.config_file == EXAMPLE


def test_serve_with_a_bad_config_on_the_in_memory_store_stops_before_the_server_starts(
    monkeypatch: pytest.MonkeyPatch, uvicorn_run: FakeUvicorn, tmp_path: Path
) -> None:
    monkeypatch.setenv("AGENTKEEP_ENABLE_DB", "false")
    bad = write(tmp_path / "bad.json", {"agents": [{"name": "a", "tools": ["missing"]}]})
    result = run("serve", "--config", str(bad))
    assert result.exit_code == 2
    assert "agents[0].tools[0]" in said(result)
    assert uvicorn_run.calls == []


def test_the_readme_project_file_is_valid() -> None:
    readme = (EXAMPLES.parent / "README.md").read_text()
    section = readme.split("## Configuration as code", 1)[1]
    block = section.split("```json\n", 1)[1].split("```", 1)[0]
    project = validate_project(json.loads(block), "README.md")
    assert [a.name for a in project.agents] == ["bookkeeper"]
