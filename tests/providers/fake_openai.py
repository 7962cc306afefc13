"""A real OpenAI-compatible chat-completions server on loopback, scripted per test.

A Starlette app served by uvicorn in a background thread on a free port: the ``openai`` SDK
talks to it over HTTP exactly as it would to OpenAI, Ollama or vLLM, so the provider is tested
with nothing mocked. Each request takes the next scripted :class:`Reply` (a stream of
``chat.completion.chunk`` objects ending in ``data: [DONE]``, an HTTP error with an OpenAI-style
body, or a stall) and is recorded — JSON body and headers — for the test to check.

Other test packages may reuse it: ``from providers.fake_openai import FakeOpenAI, serve``.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

Chunk = dict[str, Any]


@dataclass
class Reply:
    """What the server answers to one request."""

    chunks: list[Chunk] = field(default_factory=list)
    status: int = 200
    error: Chunk | None = None
    """The JSON body sent with an error ``status``."""
    stall: float = 0.0
    """Seconds to wait before answering at all."""
    stall_after: int | None = None
    """Stall (``stall`` seconds) after sending this many chunks instead of before answering."""
    chunk_delay: float = 0.0
    done: bool = True
    """End with ``data: [DONE]``."""


@dataclass
class Received:
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class FakeOpenAI:
    """The scripted server's state: replies to send, requests received, streams cut short."""

    replies: deque[Reply] = field(default_factory=deque)
    received: list[Received] = field(default_factory=list)
    streams_cut: int = 0
    base_url: str = ""

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def reset(self) -> None:
        self.replies.clear()
        self.received.clear()
        self.streams_cut = 0

    @property
    def last(self) -> dict[str, Any]:
        return self.received[-1].body

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/chat/completions", self._complete, methods=["POST"])])

    async def _complete(self, request: Request) -> Response:
        self.received.append(Received(await request.json(), dict(request.headers)))
        reply = self.replies.popleft() if self.replies else Reply(chunks=text_chunks("ok"))
        if reply.stall and reply.stall_after is None:
            await _stall(request, reply.stall)
        if reply.status != 200:
            return JSONResponse(reply.error, status_code=reply.status)
        return StreamingResponse(self._events(reply), media_type="text/event-stream")

    async def _events(self, reply: Reply) -> AsyncIterator[str]:
        finished = False
        try:
            for sent, chunk in enumerate(reply.chunks):
                if sent == reply.stall_after:
                    await anyio.sleep(reply.stall)
                if sent and reply.chunk_delay:
                    await anyio.sleep(reply.chunk_delay)
                yield f"data: {json.dumps(chunk)}\n\n"
            if reply.done:
                yield "data: [DONE]\n\n"
            finished = True
        finally:
            self.streams_cut += not finished


async def _stall(request: Request, seconds: float) -> None:
    """Answer nothing for ``seconds``, or until the client gives up (so shutdown is quick)."""
    with anyio.move_on_after(seconds):
        while not await request.is_disconnected():
            await anyio.sleep(0.02)


@contextmanager
def serve(fake: FakeOpenAI) -> Iterator[FakeOpenAI]:
    """Serve ``fake`` on a free loopback port (its ``base_url`` ends in ``/v1``) until exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        fake.app(), log_level="warning", lifespan="off", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the fake OpenAI server did not start")
        time.sleep(0.01)
    fake.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    try:
        yield fake
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def chunk(delta: Chunk, *, finish_reason: str | None = None, index: int = 0) -> Chunk:
    """One ``chat.completion.chunk`` with one choice, as OpenAI sends it."""
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "fake-model",
        "system_fingerprint": None,
        "choices": [
            {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        ],
    }


def usage_chunk(prompt_tokens: int, completion_tokens: int) -> Chunk:
    """The last chunk when ``stream_options.include_usage`` is set: no choices, the usage."""
    return {
        **chunk({}),
        "choices": [],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def text_chunks(*pieces: str, finish_reason: str = "stop") -> list[Chunk]:
    """The role chunk, one chunk per piece of content, then the finishing chunk."""
    return [
        chunk({"role": "assistant", "content": ""}),
        *(chunk({"content": piece}) for piece in pieces),
        chunk({}, finish_reason=finish_reason),
    ]


def tool_delta(
    index: int, *, call_id: str | None = None, name: str | None = None, arguments: str = ""
) -> Chunk:
    """A chunk carrying one piece of tool call ``index``: the id and name come first, once."""
    function: Chunk = {"arguments": arguments}
    call: Chunk = {"index": index, "function": function}
    if call_id is not None:
        call.update(id=call_id, type="function")
    if name is not None:
        function["name"] = name
    return chunk({"tool_calls": [call]})


def openai_error(message: str, kind: str, code: str | None = None) -> Chunk:
    """An error body in OpenAI's shape."""
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}
