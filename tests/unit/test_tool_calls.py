"""Tool-call records: validated once when a message is built, stored as they were given."""

from __future__ import annotations

import pytest

from agentkeep import Message, MessageCreate, ToolCallRecord, ValidationError

RUNTIME_CALL = {"id": "c1", "name": "current_time", "arguments": {"tz": "UTC"}, "is_error": False}
CHAT_COMPLETIONS_CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "search_web", "arguments": '{"q": "Zürich hotel"}'},
}


class TestToolCallRecord:
    def test_a_record_dumps_the_keys_it_was_given(self) -> None:
        assert ToolCallRecord.model_validate(RUNTIME_CALL).model_dump() == RUNTIME_CALL
        bare = ToolCallRecord.model_validate({"name": "current_time"})
        assert (bare.id, bare.arguments, bare.is_error) == (None, {}, False)
        assert bare.model_dump() == {"name": "current_time"}

    def test_other_keys_are_kept(self) -> None:
        given = {"name": "search", "arguments": {}, "type": "tool_use"}
        assert ToolCallRecord.model_validate(given).model_dump(mode="json") == given

    def test_a_chat_completions_call_reads_as_a_record_and_dumps_as_stored(self) -> None:
        record = ToolCallRecord.model_validate(CHAT_COMPLETIONS_CALL)
        assert (record.id, record.name, record.arguments) == (
            "call_1",
            "search_web",
            {"q": "Zürich hotel"},
        )
        assert record.model_dump() == CHAT_COMPLETIONS_CALL

    @pytest.mark.parametrize("arguments", ["not json", "[1, 2]", None])
    def test_chat_completions_arguments_that_are_no_object_read_as_empty(
        self, arguments: str | None
    ) -> None:
        call = {"id": "c", "function": {"name": "f", "arguments": arguments}}
        assert ToolCallRecord.model_validate(call).arguments == {}

    @pytest.mark.parametrize(
        "call",
        [{"id": "c"}, {"name": 1}, {"name": "f", "arguments": [1]}, {"name": "f", "is_error": "?"}],
    )
    def test_a_malformed_call_is_refused_when_the_message_is_built(
        self, call: dict[str, object]
    ) -> None:
        with pytest.raises(ValidationError) as caught:
            MessageCreate(role="assistant", content="", tool_calls=[call])
        assert (caught.value.field or "").startswith("tool_calls.0")

    def test_a_message_validates_its_calls_into_records(self) -> None:
        sent = MessageCreate(role="assistant", content="", tool_calls=[RUNTIME_CALL])
        assert sent.tool_calls == [ToolCallRecord.model_validate(RUNTIME_CALL)]
        assert Message.model_json_schema()["$defs"]["ToolCallRecord"]["required"] == ["name"]
