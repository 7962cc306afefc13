"""What every API failure looks like, checked in one place."""

from __future__ import annotations

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
