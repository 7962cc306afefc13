"""Schemathesis over the OpenAPI schema: generated requests, valid and not, on every backend.

No request may get a 5xx, and every response must match what the schema documents for it
(status code, content type, body). Schema-valid requests may still be refused with a 4xx where
a rule lives in the store rather than in the schema (an opaque cursor, a name already taken, a
regular expression that does not compile), and unknown query parameters are ignored as HTTP
APIs commonly do: the two strictness checks that would flag those are left out.

Runs in process through the app's ASGI interface, one hypothesis run per operation and
generation mode (schemathesis' pytest plugin needs the per-test node id that pytest 9 no longer
exposes, so the operations are driven here).
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from pydantic import SecretStr
from schemathesis import GenerationMode
from schemathesis.core.result import Ok
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from agentkeep import Settings
from agentkeep.api import create_app

EXAMPLES = 15
KEY = "schema-test-key"  # with a key configured, the ignored-auth check has something to find


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_errors_and_every_response_matches_the_schema(
    settings: Settings, mode: GenerationMode
) -> None:
    keyed = settings.model_copy(update={"api_keys": [SecretStr(KEY)]})
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(keyed))
    operations = [result.ok() for result in schema.get_all_operations() if isinstance(result, Ok)]
    assert len(operations) > 30
    try:
        for operation in operations:

            @given(case=operation.as_strategy(generation_mode=mode))
            @hypothesis_settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def check(case: schemathesis.Case[Any]) -> None:
                case.call_and_validate(
                    headers={"Authorization": f"Bearer {KEY}"},
                    excluded_checks=[positive_data_acceptance, negative_data_rejection],
                )

            try:
                check()
            except Unsatisfiable:
                # an operation without parameters or body (GET /metrics) has nothing to negate
                assert mode is GenerationMode.NEGATIVE, operation.label
    finally:
        shutdown_lifespans()  # closes the store before the backend fixture empties it
