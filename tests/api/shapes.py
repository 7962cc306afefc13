"""What every API failure looks like, checked in one place."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """The error body of a failed response, after checking its status and shape."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert {"code", "message"} <= set(error) <= {"code", "message", "field"}, error
    assert error["message"]
    return error


async def sse_events(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """The (event, data) pairs of a Server-Sent Events response as they arrive."""
    event, data = "message", []
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            event = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data.append(line.removeprefix("data:").strip())
        elif not line and data:
            yield event, json.loads("\n".join(data))
            event, data = "message", []


async def read_sse(response: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return [pair async for pair in sse_events(response)]
