"""``/api/v1/streaming``: chat turns streamed as Server-Sent Events or over a WebSocket.

``POST /start`` (a new conversation and its first message) and ``POST /send`` (a message in an
existing conversation) answer ``text/event-stream``: events ``message_start``, ``thinking``,
``token``, ``tool_call``, ``tool_result``, then ``message_end`` or ``error``, each with a JSON
``data`` object. Bad input (an unknown agent or conversation, an invalid body) is refused with
the ordinary JSON error before any event is sent. A client that disconnects mid-stream cancels
the turn; the partial reply is kept, marked ``cancelled`` (the turn runs in a task apart from the
response, see :class:`TurnResponse`). A message sent again with the same ``client_id`` gets the
first turn's reply again, from the store.

``WS /ws/{conversation_id}`` runs the same turns over one connection: the client sends
``{"type": "message", "content": …, "client_id"?: …}`` and receives ``{"event": …, "data": …}``
frames; ``{"type": "cancel"}`` stops the turn in progress (the stop button). A browser cannot set
headers on a WebSocket, so an API key may also come as ``?api_key=…``. What the socket does with
frames it cannot use is described on :func:`websocket`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Annotated, Any, NoReturn

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from fastapi import APIRouter, Body, WebSocket, WebSocketDisconnect
from pydantic import ValidationError as PydanticValidationError
from sse_starlette import EventSourceResponse
from starlette.types import Receive, Scope, Send

from agentkeep.api.auth import socket_authorised
from agentkeep.api.deps import API_PREFIX, Chat, example
from agentkeep.api.errors import responses
from agentkeep.errors import AgentkeepError, NotFoundError
from agentkeep.managers.chat import ChatEvent, ChatRuntime, NewConversation, Turn, TurnInput
from agentkeep.models.common import from_pydantic

log = logging.getLogger("agentkeep.api")

router = APIRouter(prefix=f"{API_PREFIX}/streaming", tags=["streaming"])
socket_router = APIRouter(prefix=f"{API_PREFIX}/streaming", tags=["streaming"])
"""The WebSocket checks its API key itself (a browser sends it as ``?api_key=``)."""


class SendInput(TurnInput):
    conversation_id: uuid.UUID


_STREAM: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-Sent Events: message_start, thinking, token, tool_call, "
        "tool_result, then message_end or error",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


class TurnResponse(EventSourceResponse):
    """A turn streamed as Server-Sent Events, the turn running in a task of its own.

    The response only reads the turn's events from a queue; when it stops (the stream ended, or
    the client left and sse-starlette stopped iterating), the turn is cancelled unless its reply
    is already stored, and the request waits for it: the reply is stored as ``cancelled`` before
    the request (and a graceful shutdown) completes, never left ``streaming``.
    """

    def __init__(self, turn: Turn) -> None:
        self.turn = turn
        self.queue, received = anyio.create_memory_object_stream[ChatEvent](_QUEUED)
        # no proxy buffering: tokens must reach the client as they are made
        super().__init__(_frames(received), ping=15, headers={"X-Accel-Buffering": "no"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(_drive, self.turn, self.queue)
            try:
                await super().__call__(scope, receive, send)
            finally:
                if not self.turn.finished:  # nobody reads any more: stop the model
                    group.cancel_scope.cancel()


_QUEUED = 64
"""Events a turn may run ahead of a slow client."""


async def _drive(turn: Turn, queue: MemoryObjectSendStream[ChatEvent]) -> None:
    """Run the turn to its end; once nobody reads, a turn whose reply is stored still runs its
    POST_RESPONSE modules, one that is still streaming is stopped (and stored cancelled)."""
    async with queue, aclosing(turn.events()) as events:
        async for event in events:
            try:
                await queue.send(event)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                if not turn.finished:
                    return


async def _frames(events: MemoryObjectReceiveStream[ChatEvent]) -> AsyncIterator[bytes]:
    async with events:
        async for event in events:
            yield _frame(event)


def _frame(event: ChatEvent) -> bytes:
    """One event as its SSE frame, the bytes ``ServerSentEvent(data, event).encode()`` makes,
    built directly (a reply sends one per token): event names are fixed words, and JSON text
    has no line break in it, so there is no line to split."""
    return b"event: %s\r\ndata: %s\r\n\r\n" % (
        event.event.encode(),
        json.dumps(event.data).encode(),
    )


@router.post(
    "/start",
    summary="Start a conversation with an agent and stream its reply (SSE)",
    response_class=EventSourceResponse,
    responses={**_STREAM, **responses(400, 404, 413, 422)},
)
async def start(
    chat: Chat,
    data: Annotated[
        NewConversation,
        Body(
            openapi_examples=example(
                "a first message",
                {"agent_id": "0193…", "user_id": "u1", "content": "Hello!"},
            )
        ),
    ],
) -> TurnResponse:
    return TurnResponse(await chat.start(data))


@router.post(
    "/send",
    summary="Send a message in a conversation and stream the agent's reply (SSE)",
    response_class=EventSourceResponse,
    responses={**_STREAM, **responses(400, 404, 413, 422)},
)
async def send(
    chat: Chat,
    data: Annotated[
        SendInput,
        Body(
            openapi_examples=example(
                "a message", {"conversation_id": "0193…", "content": "And tomorrow?"}
            )
        ),
    ],
) -> TurnResponse:
    return TurnResponse(await chat.send(data.conversation_id, data))  # a SendInput is a TurnInput


UNSUPPORTED_DATA = 1003
"""Close code for a binary frame: the protocol is JSON text."""
TOO_BIG = 1009
"""Close code for a frame over ``AGENTKEEP_MAX_REQUEST_BYTES``."""
INTERNAL_ERROR = 1011
"""Close code when the server itself failed."""
POLICY_VIOLATION = 1008
"""Close code when no valid API key was given."""


INVALID_CONVERSATION = 4422
"""Close code when the path's ``conversation_id`` is not a UUID."""
UNKNOWN_CONVERSATION = 4404
"""Close code when no conversation has the path's ``conversation_id``."""


@socket_router.websocket("/ws/{conversation_id}")
async def websocket(socket: WebSocket, conversation_id: str) -> None:
    """Chat turns over one WebSocket.

    Frames from the client are JSON text objects: ``{"type": "message", "content": …,
    "client_id"?: …, "metadata"?: …}`` starts a turn (its events come back as ``{"event": …,
    "data": …}``, as over SSE), ``{"type": "cancel"}`` stops the turn in progress.

    A frame that is merely bad is answered with an ``error`` event, ``{"event": "error", "data":
    {"code", "message", "field"?}}``, and the socket stays open for the next one:
    ``invalid_json`` for text that is not JSON (or nests too deeply to read),
    ``validation_error`` for JSON that is not an object, an unknown ``type``, a message whose
    fields are wrong (``field`` names the first) or whose strings hold a lone surrogate
    (``\\ud800``-``\\udfff``, which no store can keep); errors of the turn itself (an unknown
    conversation, content over its limit) come the same way. A frame the socket cannot read at
    all closes it, with a close code and a reason: 1003 for a binary frame, 1009 for a frame over
    ``AGENTKEEP_MAX_REQUEST_BYTES``; 1008 when no valid API key was given; 1011 if the server
    itself failed. A turn in progress when the socket closes is stopped and its reply stored
    ``cancelled``.

    The conversation is checked when the socket opens: the socket is accepted, then closed at
    once with 4422 if ``conversation_id`` is not a UUID, or 4404 if no conversation has it; the
    close reason starts with ``conversation_id:`` and says which (a WebSocket client, a browser
    included, can read the code and reason, where a refused handshake shows only a failure).
    """
    if not await _authorised(socket):
        await socket.close(code=POLICY_VIOLATION, reason="a valid API key is required")
        return
    await socket.accept()
    chat: ChatRuntime = socket.app.state.chat
    try:
        target = await _conversation(socket, chat, conversation_id)
        while True:
            request = await _receive(socket)
            if request is None:  # answered already
                continue
            kind = request.get("type")
            if kind == "message":
                await _turn(socket, chat, target, request)
            elif kind != "cancel":  # a cancel with no turn running has nothing to stop
                await _send_error(socket, "validation_error", 'send {"type": "message", …}')
    except WebSocketDisconnect:
        return
    except Exception:  # a fault of the server's, not of the frame: say so, then close
        log.exception("the chat WebSocket failed")
        await _close_quietly(socket, INTERNAL_ERROR, "the server failed")


async def _conversation(socket: WebSocket, chat: ChatRuntime, raw: str) -> uuid.UUID:
    """The path's conversation id, once it names a conversation; else the socket is closed."""
    try:
        conversation_id = uuid.UUID(raw)
    except ValueError:
        await _close(socket, INVALID_CONVERSATION, "conversation_id: not a valid UUID")
    try:
        await chat.store.agent_of(conversation_id)
    except NotFoundError:
        await _close(socket, UNKNOWN_CONVERSATION, "conversation_id: no such conversation")
    return conversation_id


_BUSY = 'a turn is in progress: wait for its end, or send {"type": "cancel"}'


async def _turn(
    socket: WebSocket, chat: ChatRuntime, conversation_id: uuid.UUID, request: dict[str, Any]
) -> None:
    """Stream one turn, cancelling it on ``{"type": "cancel"}`` or when the client goes away."""
    fields = {k: v for k, v in request.items() if k != "type"}
    try:
        turn = await chat.send(conversation_id, TurnInput.model_validate(fields))
    except PydanticValidationError as exc:
        await socket.send_json({"event": "error", "data": from_pydantic(exc).to_dict()})
        return
    except AgentkeepError as exc:
        await socket.send_json({"event": "error", "data": exc.to_dict()})
        return
    gone, finished, started = False, False, None
    async with anyio.create_task_group() as group:

        async def watch() -> None:  # the only reader while a turn streams
            nonlocal gone
            try:
                while True:
                    message = await _receive(socket)
                    if message is not None and message.get("type") == "cancel":
                        break
                    if message is not None:
                        await _send_error(socket, "conflict", _BUSY)
            except WebSocketDisconnect:
                gone = True
            group.cancel_scope.cancel()

        group.start_soon(watch)
        async with aclosing(turn.events()) as events:
            async for event in events:
                started = event.data if event.event == "message_start" else started
                await socket.send_json({"event": event.event, "data": event.data})
        finished = True
        group.cancel_scope.cancel()  # the turn is over: stop watching
    if gone:
        raise WebSocketDisconnect
    if not finished and started is not None:  # stopped by the client
        ended = {"message_id": started["message_id"], "status": "cancelled"}
        await socket.send_json({"event": "message_end", "data": ended})


async def _receive(socket: WebSocket) -> dict[str, Any] | None:
    """The next frame as a JSON object; ``None`` for a bad one (answered with an error event).

    Raises ``WebSocketDisconnect`` when the client left, or when the frame closed the socket.
    """
    message = await socket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    text = message.get("text")
    if not isinstance(text, str):
        await _close(socket, UNSUPPORTED_DATA, "frames must be JSON text, not binary")
    limit: int = socket.app.state.settings.max_request_bytes
    if len(text) * 4 > limit and len(text.encode(errors="surrogatepass")) > limit:
        await _close(socket, TOO_BIG, f"a frame is over {limit} bytes")
    try:
        value = json.loads(text)
    except ValueError as exc:
        await _send_error(socket, "invalid_json", f"frames must be JSON objects: {exc}")
        return None
    except RecursionError:  # "[[[[…" nested past what Python's parser follows
        await _send_error(socket, "invalid_json", "the frame nests too deeply to read")
        return None
    if not isinstance(value, dict):
        await _send_error(socket, "validation_error", 'frames must be JSON objects: {"type": …}')
        return None
    field = _with_lone_surrogate(value)
    if field is not None:
        await _send_error(
            socket,
            "validation_error",
            f"{field}: strings must be valid Unicode (a lone surrogate is not)",
            field=field,
        )
        return None
    return value


def _with_lone_surrogate(value: dict[str, Any]) -> str | None:
    """The first field whose strings hold a lone surrogate (a JSON ``\\ud800`` escape)."""
    for key, item in value.items():
        try:
            json.dumps([key, item], ensure_ascii=False).encode()
        except UnicodeEncodeError:
            return key
        except RecursionError:  # too deep to check here; the turn's own checks refuse it
            continue
    return None


async def _send_error(
    socket: WebSocket, code: str, message: str, *, field: str | None = None
) -> None:
    data = {"code": code, "message": message} | ({} if field is None else {"field": field})
    await socket.send_json({"event": "error", "data": data})


async def _close(socket: WebSocket, code: int, reason: str) -> NoReturn:
    """Close the socket with ``code`` and end the conversation over it."""
    await _close_quietly(socket, code, reason)
    raise WebSocketDisconnect(code, reason)


async def _close_quietly(socket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):  # the client may be gone already: nothing to tell
        await socket.close(code=code, reason=reason)


async def _authorised(socket: WebSocket) -> bool:
    return await socket_authorised(socket)  # a key, or the web UI's sign-in from its own pages
