"""``reason``: one of pydantic's errors in the validator's own words, whatever raised it."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError, field_validator

from agentkeep.models.common import from_pydantic, reason


class Expense(BaseModel):
    amount: int
    currency: str = "RUB"

    @field_validator("amount")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("must be more than nothing")
        return value

    @field_validator("currency")
    @classmethod
    def _known(cls, value: str) -> str:
        assert len(value) == 3, "must be a three-letter code"
        return value


def _first_error(**fields: object) -> ValidationError:
    with pytest.raises(ValidationError) as refused:
        Expense.model_validate(fields)
    return refused.value


def test_a_validators_value_error_is_said_without_pydantics_prefix() -> None:
    error = _first_error(amount=-5)
    assert error.errors()[0]["msg"].startswith("Value error, ")  # what pydantic says
    assert reason(error.errors()[0]) == "must be more than nothing"
    refused = from_pydantic(error)
    assert (refused.message, refused.field) == ("amount: must be more than nothing", "amount")


def test_a_validators_assertion_is_said_without_pydantics_prefix() -> None:
    error = _first_error(amount=1, currency="roubles")
    assert error.errors()[0]["msg"].startswith("Assertion failed, ")
    # an assertion's message is followed by the expression that failed
    assert reason(error.errors()[0]).startswith("must be a three-letter code")
    assert from_pydantic(error).message.startswith("currency: must be a three-letter code")


def test_pydantics_own_messages_are_kept_whole() -> None:
    error = _first_error(amount="three hundred")
    assert reason(error.errors()[0]) == error.errors()[0]["msg"]
    assert reason(error.errors()[0]).startswith("Input should be a valid integer")
    # only the prefix a raised error gets is dropped, not the same words elsewhere
    assert reason({"type": "string_type", "msg": "Value error, kept"}) == "Value error, kept"
