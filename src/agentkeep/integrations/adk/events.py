"""ADK events as agentkeep messages, and back.

A stored event is a message that people and the rest of agentkeep can read: its role (the user's
events are ``user``; an event that only returns function results is ``tool``; any other agent
event is ``assistant``), its text, its thought text as ``thinking``, its function calls as
``tool_calls`` and its token usage in the token columns. The message's metadata keeps the whole
event as ADK wrote it (``adk_event``, the JSON of ``Event.model_dump_json(exclude_none=True)``, as
ADK's own database services store it), so reading it back gives an equal ``Event``, field for
field. The event's id is the message's ``client_id`` (a retried append stores it once) and its
platform ``message_id``.

A message in an ADK session that ADK did not write (appended through agentkeep's API, say) reads
as an event of its author (``user``, or ``agent`` for any other role) with its text.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from google.adk.events.event import Event
from google.genai import types
from pydantic_core import to_jsonable_python

from agentkeep.models.conversation import MessageCreate, ToolCallRecord
from agentkeep.models.enums import Role

EVENT_KEY = "adk_event"
"""Where a message's metadata keeps the event it stores."""


def message_of(event: Event) -> MessageCreate:
    """The message that stores ``event``."""
    parts = event.content.parts if event.content is not None and event.content.parts else []
    text = "".join(part.text for part in parts if part.text and not part.thought)
    thinking = "\n".join(part.text for part in parts if part.text and part.thought)
    calls = [part.function_call for part in parts if part.function_call is not None]
    results = [part.function_response for part in parts if part.function_response is not None]
    metadata: dict[str, Any] = {
        EVENT_KEY: json.loads(event.model_dump_json(exclude_none=True)),
        "author": event.author,
        "invocation_id": event.invocation_id,
    }
    role = Role.ASSISTANT
    if event.author == "user":
        role = Role.USER
    elif results and not calls and not text:
        role = Role.TOOL
        if results[0].id:
            metadata["tool_call_id"] = results[0].id
        text = "\n".join(
            json.dumps(to_jsonable_python(result.response, serialize_unknown=True))
            for result in results
        )
    usage = event.usage_metadata
    return MessageCreate(
        role=role,
        content=text,
        thinking=thinking or None,
        tool_calls=[
            ToolCallRecord(
                id=call.id,
                name=call.name or "",
                arguments=to_jsonable_python(call.args or {}, serialize_unknown=True),
            )
            for call in calls
        ]
        or None,
        metadata=metadata,
        input_tokens=usage.prompt_token_count if usage else None,
        output_tokens=usage.candidates_token_count if usage else None,
        message_id=event.id,
        client_id=event.id,
    )


def message_event(message_id: Any, role: str, content: str, created_at: datetime) -> Event:
    """The event a message that stores none reads as (one added through agentkeep's own API);
    a message that stores one reads as that (``Event.model_validate_json`` of its
    ``adk_event``)."""
    author = "user" if role == Role.USER else "agent"
    return Event(
        id=str(message_id),
        author=author,
        content=types.Content(
            role="user" if author == "user" else "model", parts=[types.Part(text=content)]
        ),
        timestamp=created_at.timestamp(),
    )
