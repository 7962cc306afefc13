"""The store's operations present themselves as what they are, on both APIs."""

from __future__ import annotations

import inspect

import pytest

from agentkeep import Settings, connect, connect_sync


@pytest.mark.parametrize("opened", [connect_sync, connect], ids=["sync", "async"])
def test_help_shows_each_operations_own_signature_and_docstring(opened: object) -> None:
    db = opened(Settings(database_url="memory"))  # type: ignore[operator]
    try:
        for operation, first_parameter, doc in [
            (db.messages.append, "conversation_id", "Store a message at the end"),
            (db.find_conversation_by_reply, "reply_to_message_id", "The conversation holding"),
            (db.get_conversation_context, "conversation_id", "Everything an agent needs"),
        ]:
            parameters = list(inspect.signature(operation).parameters)
            assert parameters[0] == first_parameter
            assert operation.__doc__.startswith(doc)
            assert inspect.iscoroutinefunction(operation) is (opened is connect)
    finally:
        db.close()


def test_an_operation_is_bound_once_per_store() -> None:
    db = connect_sync(Settings(database_url="memory"))
    try:
        assert db.messages.append is db.messages.append
    finally:
        db.close()
