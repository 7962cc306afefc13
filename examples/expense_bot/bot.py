"""An expense bot that keeps its whole conversation lifecycle in agentkeep, over HTTP only.

It reads chat updates (Telegram's shape) from a scripted feed instead of the network, and appends
finished expenses to a CSV file standing in for a spreadsheet:

1. "bought coffee for 300": a conversation starts with that message; the agent stores what it
   understood (amount, item) as partial data and asks for the account. The bot's message carrying
   the question gets the next platform message id.
2. The user replies to that question: the conversation is found by the reply, the reply is stored
   (which answers the question), the partial data is completed, the row is appended to the CSV,
   and the conversation is completed with the row number as its external reference.

Standard library only, so it reads as a bot in any language would: JSON over HTTP.

    agentkeep serve --port 8000 &
    python examples/expense_bot/bot.py --api http://127.0.0.1:8000 \\
        --feed examples/expense_bot/feed.json --sheet expenses.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

AGENT = "ExpenseAgent"
FIELDS = ["amount", "item", "account", "category"]
CATEGORIES = {"coffee": "food", "sandwich": "food", "taxi": "transport"}
ASK_ACCOUNT = "From which account?"


class Api:
    """agentkeep's HTTP API: JSON in, JSON out; an error answer ends the bot with its message."""

    def __init__(self, base: str, key: str | None = None) -> None:
        self.base = base.rstrip("/") + "/api/v1"
        self.key = key

    def call(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        url = self.base + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("content-type", "application/json")
        if self.key:
            request.add_header("authorization", f"Bearer {self.key}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            if error.code == 404 and method == "GET":
                return None
            raise SystemExit(f"{method} {path}: {error.code} {error.read().decode()}") from None


class Chat:
    """Stands in for the chat platform: what the bot sends gets the next message id."""

    def __init__(self, first_id: int) -> None:
        self.next_id = first_id
        self.sent: list[tuple[int, str]] = []

    def seen(self, message_id: int) -> None:
        """A user's message took ``message_id``: the platform numbers all a chat's messages."""
        self.next_id = max(self.next_id, message_id + 1)

    def send(self, text: str) -> int:
        message_id, self.next_id = self.next_id, self.next_id + 1
        self.sent.append((message_id, text))
        print(f"bot [{message_id}]: {text}")
        return message_id


def understand(text: str) -> dict[str, Any]:
    """The agent, reduced to a rule: '<verb> <item> for <amount>'."""
    match = re.search(r"(\w+) for (\d+(?:\.\d+)?)", text)
    if match is None:
        return {}
    item, amount = match.group(1), float(match.group(2))
    found: dict[str, Any] = {"amount": int(amount) if amount.is_integer() else amount}
    found["item"] = item
    if item in CATEGORIES:
        found["category"] = CATEGORIES[item]
    return found


class ExpenseBot:
    def __init__(self, api: Api, chat: Chat, sheet: Path) -> None:
        self.api, self.chat, self.sheet = api, chat, sheet

    def handle(self, update: dict[str, Any]) -> None:
        message = update["message"]
        print(f"user [{message['message_id']}]: {message['text']}")
        self.chat.seen(message["message_id"])
        replied = message.get("reply_to_message")
        if replied is not None:
            conversation = self.api.call(
                "GET",
                "/conversations/by-reply",
                reply_to_message_id=replied["message_id"],
                chat_id=message["chat"]["id"],
            )
            if conversation is not None:
                self.continue_(conversation["id"], message)
                return
        self.start(message)

    def start(self, message: dict[str, Any]) -> None:
        first = {"role": "user", "content": message["text"], "message_id": message["message_id"]}
        started = self.api.call(
            "POST",
            "/conversations/start",
            {
                "user_id": message["from"]["id"],
                "chat_id": message["chat"]["id"],
                "operation_type": "expense",
                "agent_state": AGENT,
                "message": first,
            },
        )
        cid = started["conversation"]["id"]
        self.store(cid, "partial", understand(message["text"]))
        self.next_step(cid)

    def continue_(self, cid: str, message: dict[str, Any]) -> None:
        reply = {
            "role": "user",
            "content": message["text"],
            "message_id": message["message_id"],
            "reply_to_message_id": message["reply_to_message"]["message_id"],
        }
        self.api.call("POST", f"/conversations/{cid}/message", reply)  # answers the question
        context = self.api.call("GET", f"/conversations/{cid}/context")
        asked = context["agent_questions"][-1]["missing_fields"]
        data = dict(context["partial_data"] or {})
        data[asked[0]] = message["text"].strip().lower()
        self.store(cid, "partial", data)
        self.next_step(cid)

    def next_step(self, cid: str) -> None:
        context = self.api.call("GET", f"/conversations/{cid}/context")
        data = context["partial_data"] or {}
        missing = [name for name in FIELDS if data.get(name) is None]
        if missing:
            self.ask(cid, missing)
            return
        row = self.append_row(data)
        self.api.call(
            "POST",
            f"/conversations/{cid}/complete",
            {"external_ref": row, "complete_data": {**data, "sheet_row": row}},
        )
        self.say(cid, f"Saved: {data['item']}, {data['amount']} from {data['account']} (row {row})")

    def ask(self, cid: str, missing: list[str]) -> None:
        question = ASK_ACCOUNT if missing[0] == "account" else f"What is the {missing[0]}?"
        message_id = self.say(cid, question)
        self.api.call(
            "POST",
            f"/conversations/{cid}/questions",
            {
                "agent_name": AGENT,
                "question": question,
                "missing_fields": missing,
                "message_id": message_id,
            },
        )

    def say(self, cid: str, text: str) -> int:
        message_id = self.chat.send(text)
        body = {"role": "assistant", "content": text, "message_id": message_id}
        self.api.call("POST", f"/conversations/{cid}/message", body)
        return message_id

    def store(self, cid: str, data_type: str, content: dict[str, Any]) -> None:
        body = {"data_type": data_type, "content": content}
        self.api.call("POST", f"/conversations/{cid}/data", body)

    def append_row(self, data: dict[str, Any]) -> int:
        """Append the expense to the sheet; its row number (the header is row 1)."""
        new = not self.sheet.exists()
        with self.sheet.open("a", newline="") as sheet:
            writer = csv.writer(sheet)
            if new:
                writer.writerow(FIELDS)
            writer.writerow([data[name] for name in FIELDS])
        with self.sheet.open(newline="") as sheet:
            return sum(1 for _ in csv.reader(sheet))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api", default="http://127.0.0.1:8000", help="agentkeep's base URL")
    parser.add_argument("--key", default=None, help="an API key, if the server has keys")
    parser.add_argument("--feed", type=Path, default=Path(__file__).with_name("feed.json"))
    parser.add_argument("--sheet", type=Path, default=Path("expenses.csv"))
    parser.add_argument("--first-bot-message-id", type=int, default=102)
    args = parser.parse_args(argv)
    bot = ExpenseBot(Api(args.api, args.key), Chat(args.first_bot_message_id), args.sheet)
    for update in json.loads(args.feed.read_text()):
        bot.handle(update)
    return 0


if __name__ == "__main__":
    sys.exit(main())
