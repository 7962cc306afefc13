"""The model under an agent run as an ADK ``LlmAgent``: the offline echo model or LiteLLM.

An agent whose provider is ``adk`` names its model as it names any: ``echo`` (or ``echo-1``) is
agentkeep's offline echo model wrapped as an ADK ``BaseLlm`` (:class:`EchoLlm`: no network, the
same replies and options as the ``echo`` provider); any other name goes through ADK's LiteLLM route
(``google.adk.models.lite_llm.LiteLlm``), a bare name (``gpt-4o-mini``) as an OpenAI-compatible
model at ``AGENTKEEP_OPENAI_BASE_URL`` with ``AGENTKEEP_OPENAI_API_KEY``, a prefixed one
(``anthropic/claude-…``) as LiteLLM reads it. LiteLLM is not a dependency of agentkeep: without
it, such a model is a :class:`ProviderError` naming the extra to install.

The conversions between ADK's request contents and agentkeep's chat messages live here too: the
echo model reads them back, and the runtime writes a turn's history into them.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import AsyncGenerator, Iterable, Mapping
from typing import Any

from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.genai import types
from pydantic import Field
from pydantic_core import to_jsonable_python

from agentkeep.config import Settings
from agentkeep.providers.base import (
    ChatMessage,
    CompletionRequest,
    ProviderError,
    Thinking,
    Token,
    ToolCall,
    ToolCallRequest,
    ToolSpec,
    Usage,
)
from agentkeep.providers.echo import EchoProvider

ECHO_MODELS = frozenset({"echo", "echo-1"})
"""Model names that mean the offline echo model."""
LITELLM_EXTRA = "adk-litellm"
RESULT_KEY = "result"
"""A tool result's text in the function response ADK is given (``{"result": ...}``)."""


class EchoLlm(BaseLlm):
    """agentkeep's offline echo model as an ADK model: streams partial text when asked to."""

    model: str = "echo"
    options: dict[str, Any] = Field(default_factory=dict)
    """The agent's ``model_settings`` (the echo model's options: see ``providers.echo``)."""

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        request = CompletionRequest(
            self.model, chat_messages(llm_request), tool_specs(llm_request), dict(self.options)
        )
        thought: list[str] = []
        text: list[str] = []
        calls: list[types.Part] = []
        usage: types.GenerateContentResponseUsageMetadata | None = None
        async for event in EchoProvider().stream(request):
            if isinstance(event, Thinking | Token):
                thinking = isinstance(event, Thinking)
                (thought if thinking else text).append(event.text)
                if stream:
                    part = types.Part(text=event.text, thought=thinking or None)
                    yield LlmResponse(
                        content=types.Content(role="model", parts=[part]), partial=True
                    )
            elif isinstance(event, ToolCallRequest):
                call = event.call
                calls.append(
                    types.Part(
                        function_call=types.FunctionCall(
                            id=call.id, name=call.name, args=call.arguments
                        )
                    )
                )
            elif isinstance(event, Usage):
                usage = types.GenerateContentResponseUsageMetadata(
                    prompt_token_count=event.input_tokens,
                    candidates_token_count=event.output_tokens,
                    total_token_count=event.input_tokens + event.output_tokens,
                )
        parts = [types.Part(text="".join(thought), thought=True)] if thought else []
        parts += [types.Part(text="".join(text))] if text else []
        yield LlmResponse(
            content=types.Content(role="model", parts=parts + calls), usage_metadata=usage
        )


def model_for(model: str, options: Mapping[str, Any], settings: Settings) -> BaseLlm:
    """The ADK model an agent's ``model`` names; ``ProviderError`` (field ``model``) when it
    cannot be reached (LiteLLM missing, a name LiteLLM does not route)."""
    if model in ECHO_MODELS:
        return EchoLlm(model=model, options=dict(options))
    if importlib.util.find_spec("litellm") is None:
        raise ProviderError(
            f"the adk provider reaches the model {model!r} through LiteLLM, which is not "
            f"installed: pip install 'agentkeep[{LITELLM_EXTRA}]' (or use the offline model "
            "'echo')",
            field="model",
        )
    from google.adk.models.lite_llm import LiteLlm  # noqa: PLC0415 (litellm is optional)

    route, _, name = model.rpartition("/")
    if not name.strip() or any(ch.isspace() for ch in model):
        raise ProviderError(f"unknown model {model!r} for the adk provider", field="model")
    if not route:  # a bare name: the OpenAI-compatible endpoint agentkeep is configured with
        key = settings.openai_api_key
        connection = {
            "api_base": settings.openai_base_url,
            "api_key": key.get_secret_value() if key is not None else None,
        }
        return LiteLlm(
            model=f"openai/{model}", **{k: v for k, v in connection.items() if v is not None}
        )
    return LiteLlm(model=model)


def generation_config(options: Mapping[str, Any]) -> types.GenerateContentConfig | None:
    """The sampling settings of an agent's ``model_settings`` that ADK passes to any model."""
    numbers = {
        "temperature": "temperature",
        "top_p": "top_p",
        "max_tokens": "max_output_tokens",
        "seed": "seed",
    }
    chosen: dict[str, Any] = {}
    for key, target in numbers.items():
        value = options.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            chosen[target] = int(value) if target in {"max_output_tokens", "seed"} else value
    return types.GenerateContentConfig(**chosen) if chosen else None


# -- ADK contents <-> agentkeep chat messages ------------------------------------------------------


def chat_messages(request: LlmRequest) -> tuple[ChatMessage, ...]:
    """An ADK model request's system instruction and contents as agentkeep chat messages."""
    messages: list[ChatMessage] = []
    system = request.config.system_instruction if request.config else None
    if isinstance(system, str) and system:
        messages.append(ChatMessage("system", system))
    for content in request.contents:
        messages.extend(_from_content(content))
    return tuple(messages)


def _from_content(content: types.Content) -> Iterable[ChatMessage]:
    parts = content.parts or []
    text = "".join(part.text for part in parts if part.text and not part.thought)
    if content.role == "model":
        calls = tuple(
            ToolCall(call.id or "", call.name or "", dict(call.args or {}))
            for call in (part.function_call for part in parts)
            if call is not None
        )
        yield ChatMessage("assistant", text, tool_calls=calls)
        return
    for part in parts:
        result = part.function_response
        if result is not None:
            yield ChatMessage("tool", result_text(result.response), tool_call_id=result.id)
    if text or not any(part.function_response for part in parts):
        yield ChatMessage("user", text)


def result_text(response: Mapping[str, Any] | None) -> str:
    """A function response as the text agentkeep keeps for a tool's result."""
    if response is not None and set(response) <= {RESULT_KEY, "is_error"}:
        value = response.get(RESULT_KEY)
        if isinstance(value, str):
            return value
    return json.dumps(to_jsonable_python(response or {}, serialize_unknown=True))


def to_contents(messages: Iterable[ChatMessage]) -> list[types.Content]:
    """agentkeep chat messages (no system message) as ADK contents; consecutive tool results
    become one user content, as ADK gives a model the results of one round."""
    contents: list[types.Content] = []
    for message in messages:
        if message.role == "tool":
            part = types.Part(
                function_response=types.FunctionResponse(
                    id=message.tool_call_id,
                    name=_call_name(contents, message.tool_call_id),
                    response={RESULT_KEY: message.content},
                )
            )
            last = contents[-1] if contents else None
            if last is not None and last.parts and last.parts[-1].function_response is not None:
                last.parts.append(part)
            else:
                contents.append(types.Content(role="user", parts=[part]))
            continue
        role = "model" if message.role == "assistant" else "user"
        parts = [types.Part(text=message.content)] if message.content else []
        parts += [
            types.Part(function_call=types.FunctionCall(id=c.id, name=c.name, args=c.arguments))
            for c in message.tool_calls
        ]
        contents.append(types.Content(role=role, parts=parts or [types.Part(text="")]))
    return contents


def _call_name(contents: list[types.Content], call_id: str | None) -> str:
    for content in reversed(contents):
        for part in content.parts or []:
            if part.function_call is not None and part.function_call.id == call_id:
                return part.function_call.name or ""
    return call_id or ""


def tool_specs(request: LlmRequest) -> tuple[ToolSpec, ...]:
    """The function declarations an ADK model request offers, as agentkeep tool specs."""
    specs: list[ToolSpec] = []
    for tool in (request.config.tools if request.config else None) or []:
        for declaration in getattr(tool, "function_declarations", None) or []:
            schema = declaration.parameters_json_schema
            if schema is None and declaration.parameters is not None:
                schema = declaration.parameters.model_dump(mode="json", exclude_none=True)
            specs.append(
                ToolSpec(
                    declaration.name or "", declaration.description, schema or {"type": "object"}
                )
            )
    return tuple(specs)


def declaration(spec: ToolSpec) -> types.FunctionDeclaration:
    """An agentkeep tool spec as the function declaration ADK offers a model."""
    return types.FunctionDeclaration(
        name=spec.name, description=spec.description or "", parameters_json_schema=spec.parameters
    )
