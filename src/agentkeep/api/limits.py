"""Bound what a request body may cost: its size (``AGENTKEEP_MAX_REQUEST_BYTES``, answered 413) and
the time it takes to arrive (``AGENTKEEP_BODY_TIMEOUT``, answered 408).

Size: a declared ``Content-Length`` over the limit is answered at once; a body sent without one
(chunked) is counted as it arrives and cut off at the limit. Content and metadata limits per field
are checked later, by the store, with messages naming the field. (Starlette's own body limit
answers in plain text; this one answers in the API's error shape.)

Time: uvicorn bounds the idle time between requests (``timeout_keep_alive``) and the size of the
headers (h11), but not how long a body takes once the headers are in: a client that declares 100
bytes and sends none, or one byte a minute, would hold its connection (and the handler waiting on
it) for ever. So the whole body must have arrived within the timeout, counted from the moment the
request reached the app.

How a refusal reaches the client: the limit is enforced where the app reads (its ``receive``), by
raising. Whoever reads may catch that (FastAPI answers any failure while parsing a body with its
own 400), so the refusal is also remembered and the response the app then starts is replaced by
the 413 or 408; when the failure escapes the app instead, the refusal is sent in its place. Either
way the answer closes the connection, and the handler never sees a partial body, so nothing is
half-written. A response that had already started when the limit was crossed cannot be replaced:
the failure then ends it as any other would.

Once the body is whole, ``receive`` is passed through untouched: a streamed reply waits on it for
the client's disconnect for as long as the reply lasts. A response that starts before the body is
whole (a handler that ignores it) closes the connection, so an unread, stalled body cannot keep it.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import dataclass

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentkeep.db.hop import current_async_library


@dataclass(frozen=True)
class _Refusal:
    status: int
    code: str
    message: str


class _RefusedError(Exception):
    """Raised from ``receive`` when the body breaks a limit; the response is the refusal."""


class BodyLimits:
    """ASGI middleware refusing request bodies over ``limit`` bytes or slower than ``timeout``
    seconds (``math.inf``: no time limit)."""

    def __init__(self, app: ASGIApp, *, limit: int, timeout: float = math.inf) -> None:
        self.app = app
        self.limit = limit
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _send_refusal(send, _too_large(self.limit, int(declared)))
            return
        if (declared is None or declared == b"0") and b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body (most reads): nothing to guard
            return
        await _GuardedRequest(self, scope, receive, send).run()


def _too_large(limit: int, size: int) -> _Refusal:
    return _Refusal(
        413,
        "too_large",
        f"the request body is over {limit} bytes (AGENTKEEP_MAX_REQUEST_BYTES); "
        f"got {size} at least",
    )


def _too_slow(timeout: float, size: int) -> _Refusal:
    return _Refusal(
        408,
        "request_timeout",
        f"the request body did not arrive within {timeout:g} s "
        f"(AGENTKEEP_BODY_TIMEOUT); got {size} bytes",
    )


class _GuardedRequest:
    """One request's body as the app reads it, and the response it sends."""

    def __init__(self, limits: BodyLimits, scope: Scope, receive: Receive, send: Send) -> None:
        self.limits = limits
        self.scope = scope
        self._receive = receive
        self._send = send
        self.deadline = time.monotonic() + limits.timeout
        self.received = 0
        self.whole = False  # the last body message arrived: nothing more to guard
        self.refusal: _Refusal | None = None
        self.started = False  # the app's response (or the refusal) has started
        self.replaced = False  # the refusal went out instead of the app's response

    async def run(self) -> None:
        try:
            await self.limits.app(self.scope, self.receive, self.send)
        except _RefusedError:
            if self.started:
                raise
        if self.refusal is not None and not self.started:
            self.started = self.replaced = True
            await _send_refusal(self._send, self.refusal)

    async def receive(self) -> Message:
        if self.refusal is not None:
            raise _RefusedError
        if self.whole:
            return await self._receive()
        if self.deadline == math.inf:
            message = await self._receive()
        else:
            message = await self._receive_in_time()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limits.limit:
                self.refusal = _too_large(self.limits.limit, self.received)
                raise _RefusedError
            self.whole = not message.get("more_body", False)
        return message

    async def _receive_in_time(self) -> Message:
        """The next message, or the refusal once the deadline has passed by this process's
        clock. What has already arrived is taken even past the deadline (the handler was slow
        to read it, not the client to send it). An event loop's timers keep its own time,
        which may run a little behind (uvloop reads it once per turn of the loop), so a timer
        that fires before the deadline waits on for what is left."""
        while True:
            left = max(self.deadline - time.monotonic(), 0)
            try:
                if current_async_library() == "asyncio":  # a third of anyio's cost, every read
                    async with asyncio.timeout(left):
                        return await self._receive()
                else:
                    with anyio.fail_after(left):
                        return await self._receive()
            except TimeoutError:
                if time.monotonic() >= self.deadline:
                    self.refusal = _too_slow(self.limits.timeout, self.received)
                    raise _RefusedError from None

    async def send(self, message: Message) -> None:
        if self.replaced:
            return  # the app's answer to a body it could not read: the refusal went out instead
        if message["type"] == "http.response.start" and not self.started:
            self.started = True
            if self.refusal is not None:
                self.replaced = True
                await _send_refusal(self._send, self.refusal)
                return
            if not self.whole and _has_body(self.scope):
                message = {**message, "headers": [*message.get("headers", []), _CLOSE]}
        await self._send(message)


_CLOSE = (b"connection", b"close")


def _has_body(scope: Scope) -> bool:
    headers = dict(scope["headers"])
    return headers.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in headers


async def _send_refusal(send: Send, refusal: _Refusal) -> None:
    body = json.dumps({"error": {"code": refusal.code, "message": refusal.message}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": refusal.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                _CLOSE,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
