"""Portable column types: what they write is what SQLAlchemy's own processing writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter
from sqlalchemy.dialects import sqlite
from sqlalchemy.types import TypeDecorator

from agentkeep.db.types import UTCDateTime

DIALECT = sqlite.dialect()
IMPL = UTCDateTime().dialect_impl(DIALECT)
assert isinstance(IMPL, UTCDateTime)
FAST = IMPL.bind_processor(DIALECT)
GENERAL = TypeDecorator.bind_processor(IMPL, DIALECT)  # what SQLAlchemy's own processing does


class TestUTCDateTimeOnSqlite:
    @given(st.datetimes(timezones=st.just(UTC)))
    def test_a_utc_time_is_written_as_sqlalchemy_writes_it(self, value: datetime) -> None:
        assert FAST is not None
        assert GENERAL is not None
        assert FAST(value) == GENERAL(value)

    @pytest.mark.parametrize(
        "value",
        [
            datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=3))),
            TypeAdapter(datetime).validate_python("2024-05-17T09:30:15.5Z"),  # pydantic's UTC
            None,
        ],
    )
    def test_any_other_time_takes_the_general_path(self, value: datetime | None) -> None:
        assert FAST is not None
        assert GENERAL is not None
        assert FAST(value) == GENERAL(value)

    def test_a_naive_time_is_refused_as_before(self) -> None:
        assert FAST is not None
        with pytest.raises(ValueError, match="naive"):
            FAST(datetime(2024, 1, 1))
