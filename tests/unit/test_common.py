"""The shared pieces of the domain models: id normalisation, cursors and size limits."""

from __future__ import annotations

import base64
import json
import math
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentkeep import MessageCreate, TooLargeError, ValidationError
from agentkeep.models.common import (
    MAX_JSON_DEPTH,
    check_json,
    check_json_size,
    check_text_size,
    decode_cursor,
    encode_cursor,
    json_problem,
    to_uuid,
    validate_input,
)

KNOWN = uuid.UUID("0192f0c1-7a3b-7c4d-8e5f-0123456789ab")


def _raw_cursor(value: object) -> str:
    """A cursor built by hand, the way a client could forge one."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


class TestToUuid:
    def test_a_uuid_is_returned_as_it_is(self) -> None:
        assert to_uuid(KNOWN) is KNOWN

    @pytest.mark.parametrize(
        "text",
        [
            str(KNOWN),
            f"  {KNOWN}\n",
            str(KNOWN).upper(),
            KNOWN.hex,
            f"urn:uuid:{KNOWN}",
        ],
    )
    def test_a_string_form_is_parsed(self, text: str) -> None:
        assert to_uuid(text) == KNOWN

    @pytest.mark.parametrize(
        ("value", "kind"),
        [(12345, "int"), (None, "NoneType"), (KNOWN.bytes, "bytes"), (1.5, "float")],
    )
    def test_anything_but_uuid_or_str_is_a_validation_error_naming_the_field(
        self, value: object, kind: str
    ) -> None:
        with pytest.raises(ValidationError) as caught:
            to_uuid(value, "conversation_id")
        assert caught.value.field == "conversation_id"
        assert kind in caught.value.message
        assert caught.value.message.startswith("conversation_id ")

    @pytest.mark.parametrize(
        "text", ["", "   ", "not-a-uuid", str(KNOWN)[:-1], str(KNOWN) + "0", "g" * 32]
    )
    def test_a_malformed_string_is_a_validation_error_naming_the_field(self, text: str) -> None:
        with pytest.raises(ValidationError) as caught:
            to_uuid(text, "agent_id")
        assert caught.value.field == "agent_id"
        assert "not a valid UUID" in caught.value.message

    def test_a_huge_malformed_string_is_quoted_only_in_part(self) -> None:
        with pytest.raises(ValidationError) as caught:
            to_uuid("x" * 10_000)
        assert caught.value.field == "id"
        assert len(caught.value.message) < 200


class TestCursors:
    def test_a_timestamp_and_id_round_trip(self) -> None:
        when = datetime(2025, 7, 27, 15, 30, 0, 123456, tzinfo=UTC)
        cursor = encode_cursor(when, KNOWN)
        when_text, id_text = decode_cursor(cursor, 2)
        assert datetime.fromisoformat(when_text) == when
        assert uuid.UUID(id_text) == KNOWN

    def test_a_cursor_is_url_safe_and_unpadded(self) -> None:
        cursor = encode_cursor(datetime.now(UTC), KNOWN, "naïve ☕ name?&/")
        assert "=" not in cursor
        assert all(c.isalnum() or c in "-_" for c in cursor)

    @given(
        parts=st.lists(
            st.one_of(  # text a store holds: no NUL, no lone surrogate (see the next test)
                st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00")),
                st.integers(),
                st.uuids(),
                st.datetimes(timezones=st.just(UTC)),
            ),
            min_size=1,
            max_size=4,
        )
    )
    def test_any_parts_round_trip_as_their_string_forms(self, parts: list[object]) -> None:
        expected = [p.isoformat() if isinstance(p, datetime) else str(p) for p in parts]
        assert decode_cursor(encode_cursor(*parts), len(parts)) == expected

    @pytest.mark.parametrize("part", ["\x00", "a\ud800"])
    def test_a_part_no_store_holds_is_not_valid(self, part: str) -> None:
        with pytest.raises(ValidationError, match="cursor is not valid"):
            decode_cursor(encode_cursor("name", part), 2)

    def test_an_offset_timestamp_keeps_its_instant(self) -> None:
        when = datetime(2025, 1, 1, 12, tzinfo=timezone(timedelta(hours=5)))
        (text,) = decode_cursor(encode_cursor(when), 1)
        assert datetime.fromisoformat(text) == when

    @pytest.mark.parametrize(
        "cursor",
        [
            "",
            "!!!!",
            "not base64 at all",
            base64.urlsafe_b64encode(b"\xff\xfe\x00garbage").decode(),
            _raw_cursor({"a": 1}),
            _raw_cursor("just a string"),
            _raw_cursor(["only one"]),
            _raw_cursor(["one", "two", "three"]),
            _raw_cursor(["2025-01-01T00:00:00+00:00", 7]),
            _raw_cursor([None, None]),
            _raw_cursor([]),
        ],
    )
    def test_a_forged_or_damaged_cursor_is_a_validation_error(self, cursor: str) -> None:
        with pytest.raises(ValidationError) as caught:
            decode_cursor(cursor, 2)
        assert caught.value.field == "cursor"

    def test_a_truncated_cursor_is_a_validation_error(self) -> None:
        cursor = encode_cursor(datetime.now(UTC), KNOWN)
        with pytest.raises(ValidationError):
            decode_cursor(cursor[: len(cursor) // 2], 2)

    def test_a_deeply_nested_cursor_is_a_validation_error_not_a_crash(self) -> None:
        forged = base64.urlsafe_b64encode(b"[" * 5_000).decode()
        with pytest.raises(ValidationError):
            decode_cursor(forged, 2)

    def test_an_absurdly_long_cursor_is_rejected_before_decoding(self) -> None:
        with pytest.raises(ValidationError):
            decode_cursor(_raw_cursor(["x" * 100_000, "y"]), 2)

    @given(st.text())
    def test_arbitrary_text_decodes_or_is_a_validation_error(self, cursor: str) -> None:
        try:
            parts = decode_cursor(cursor, 2)
        except ValidationError as exc:
            field = exc.field
        else:
            field = "cursor"
            assert len(parts) == 2
            assert all(isinstance(p, str) for p in parts)
        assert field == "cursor"


class TestTextSize:
    def test_text_exactly_at_the_limit_passes(self) -> None:
        check_text_size("x" * 100, 100, "content")

    def test_one_byte_over_the_limit_fails_naming_the_field_and_sizes(self) -> None:
        with pytest.raises(TooLargeError) as caught:
            check_text_size("x" * 101, 100, "content")
        assert caught.value.field == "content"
        assert "101 bytes" in caught.value.message
        assert "100 bytes" in caught.value.message

    @pytest.mark.parametrize(
        ("char", "width"), [("é", 2), ("€", 3), ("☕", 3), ("😀", 4), ("Ж", 2)]
    )
    def test_multibyte_characters_count_in_utf8_bytes(self, char: str, width: int) -> None:
        fits = char * 10
        assert len(fits.encode()) == 10 * width
        check_text_size(fits, 10 * width, "content")
        with pytest.raises(TooLargeError):
            check_text_size(fits, 10 * width - 1, "content")

    def test_a_short_string_of_wide_characters_is_measured_not_guessed(self) -> None:
        # four characters, 16 bytes: the "cannot exceed" shortcut must not let it through
        with pytest.raises(TooLargeError):
            check_text_size("😀" * 4, 15, "thinking")
        check_text_size("😀" * 4, 16, "thinking")

    def test_none_is_always_within_the_limit(self) -> None:
        check_text_size(None, 1, "thinking")

    @given(
        # storable text: no NUL, no lone surrogate (those are refused before the size counts)
        text=st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"])),
        limit=st.integers(min_value=1, max_value=64),
    )
    def test_the_check_agrees_with_the_encoded_length(self, text: str, limit: int) -> None:
        try:
            check_text_size(text, limit, "content")
        except TooLargeError:
            assert len(text.encode()) > limit
        else:
            assert len(text.encode()) <= limit


class TestJsonSize:
    def test_a_document_exactly_at_the_limit_passes(self) -> None:
        document = {"a": "x" * 10}  # {"a":"xxxxxxxxxx"} is 18 bytes
        check_json_size(document, 18, "metadata")

    def test_one_byte_over_the_limit_fails_naming_the_field(self) -> None:
        with pytest.raises(TooLargeError) as caught:
            check_json_size({"a": "x" * 10}, 17, "metadata")
        assert caught.value.field == "metadata"
        assert "18 bytes" in caught.value.message

    def test_non_ascii_is_counted_as_utf8_not_as_escapes(self) -> None:
        document = {"k": "€"}  # {"k":"€"}: 9 characters, 11 bytes; escaped it would be 14
        check_json_size(document, 11, "metadata")
        with pytest.raises(TooLargeError):
            check_json_size(document, 10, "metadata")

    def test_none_is_always_within_the_limit(self) -> None:
        check_json_size(None, 2, "tool_calls")

    def test_a_list_document_is_measured_too(self) -> None:
        with pytest.raises(TooLargeError) as caught:
            check_json_size([1, 2, 3], 6, "tool_calls")  # [1,2,3] is 7 bytes
        assert caught.value.field == "tool_calls"


class TestInputValidation:
    def test_a_nul_byte_in_content_is_a_validation_error_naming_content(self) -> None:
        with pytest.raises(ValidationError) as caught:
            validate_input(MessageCreate, {"role": "user", "content": "a\x00b"})
        assert caught.value.field == "content"
        assert "NUL" in caught.value.message

    def test_an_unknown_role_is_a_validation_error_naming_role(self) -> None:
        with pytest.raises(ValidationError) as caught:
            validate_input(MessageCreate, {"role": "wizard", "content": "hi"})
        assert caught.value.field == "role"

    def test_an_unknown_field_is_rejected_not_dropped(self) -> None:
        with pytest.raises(ValidationError) as caught:
            validate_input(MessageCreate, {"role": "user", "content": "hi", "colour": "red"})
        assert caught.value.field == "colour"


class TestCheckJson:
    @pytest.mark.parametrize(
        "document",
        [{"é": [1, 2.5, None, True], "k": {"n": "☕"}}, [{"a": 1e20}], {}, [], {"": ""}],
    )
    def test_it_returns_the_compact_text_it_measured(self, document: object) -> None:
        text = check_json(document, 10_000, "metadata")
        assert text == json.dumps(document, separators=(",", ":"), ensure_ascii=False)
        assert text is not None
        assert json.loads(text) == document

    def test_nothing_is_none(self) -> None:
        assert check_json(None, 10, "metadata") is None

    def test_the_limit_counts_the_text_in_utf8(self) -> None:
        assert check_json({"k": "é"}, 10, "metadata") == '{"k":"é"}'  # 10 bytes
        with pytest.raises(TooLargeError) as caught:
            check_json({"k": "éé"}, 10, "metadata")
        assert caught.value.field == "metadata"


def _storable(value: object, depth: int = 0) -> bool:
    """What storable JSON is, said plainly (recursive: for small documents only)."""
    if isinstance(value, dict | list | tuple):
        if depth + 1 > MAX_JSON_DEPTH:
            return False
        if isinstance(value, dict):
            if not all(isinstance(k, str) and _storable(k) for k in value):
                return False
            value = list(value.values())
        return all(_storable(child, depth + 1) for child in value)
    if isinstance(value, str):
        return "\x00" not in value and not any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, bool | int)


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=5)
    | st.binary(max_size=2)
)
_DOCUMENTS = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=3) | st.integers(), children, max_size=4)
    ),
    max_leaves=20,
)


class TestJsonProblem:
    @given(_DOCUMENTS)
    def test_it_finds_a_problem_exactly_when_there_is_one(self, document: object) -> None:
        assert (json_problem(document) is None) is _storable(document)

    @pytest.mark.parametrize("levels", [MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1])
    def test_nesting_is_refused_beyond_the_limit(self, levels: int) -> None:
        document: object = 1
        for i in range(levels):
            document = [document] if i % 2 else {"k": document}
        assert (json_problem(document) is None) is (levels <= MAX_JSON_DEPTH)

    def test_a_key_that_is_not_storable_text_is_named(self) -> None:
        assert json_problem({"a\x00": 1}) == "a string must not contain a NUL (\\x00) character"
        assert json_problem({1: 1}) == "object keys must be strings"
        assert json_problem([{"k": float("nan")}]) == "numbers must be finite (no NaN or infinity)"
        assert json_problem({"k": {1, 2}}) == "set is not a JSON type"
