"""The expense bot example (``examples/expense_bot``), run as written against a real
``agentkeep serve``: the whole conversation lifecycle over HTTP, the row in the CSV standing in
for the spreadsheet, and its row number stored on the conversation."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_serve import agentkeep_env, assert_stops_cleanly, serving

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "expense_bot"


def test_the_expense_bot_plays_its_lifecycle_over_http(tmp_path: Path) -> None:
    env = agentkeep_env(tmp_path, data_dir=str(tmp_path / "data"))
    sheet = tmp_path / "expenses.csv"
    with serving(tmp_path, env) as server:
        ran = subprocess.run(
            [sys.executable, str(EXAMPLE / "bot.py"), "--api", server.base, "--sheet", str(sheet)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert ran.stdout.splitlines() == [
            "user [101]: bought coffee for 300",
            "bot [102]: From which account?",
            "user [103]: cash",
            "bot [104]: Saved: coffee, 300 from cash (row 2)",
        ]
        with sheet.open(newline="") as rows:
            assert list(csv.reader(rows)) == [
                ["amount", "item", "account", "category"],
                ["300", "coffee", "cash", "food"],
            ]
        with server.client() as client:
            api = "/api/v1/conversations"
            found = client.get(f"{api}/by-reply", params={"reply_to_message_id": 102})
            assert found.status_code == 200, found.text
            conversation = found.json()
            assert (conversation["status"], conversation["external_ref"]) == ("completed", "2")
            assert (conversation["user_id"], conversation["chat_id"]) == ("4242", "4242")
            context = client.get(f"{api}/{conversation['id']}/context").json()
            [question] = context["agent_questions"]
            assert (question["message_id"], question["answer"]) == ("102", "cash")
            assert context["complete_data"] == {
                "amount": 300,
                "item": "coffee",
                "category": "food",
                "account": "cash",
                "sheet_row": 2,
            }
            assert context["missing_fields"] == []
            assert context["last_bot_message_id"] == "104"
        assert_stops_cleanly(server, signal.SIGINT)
