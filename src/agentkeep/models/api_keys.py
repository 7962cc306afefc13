"""API keys as the store describes them: never the key itself, nor its digest.

The plaintext key exists once, in what ``db.api_keys.create`` returns next to this model; after
that only its ``prefix`` (its first characters) identifies it to people.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import computed_field

from agentkeep.models.common import Input, Model, Name


class ApiKey(Model):
    """A stored API key."""

    id: uuid.UUID
    name: str
    prefix: str
    """The key's first characters, enough to tell keys apart in a listing."""
    admin: bool = False
    """May change the whole store at once: sync or export its configuration, purge."""
    created_at: datetime
    last_used_at: datetime | None = None
    """When the server last accepted it (recorded at most once a minute per server)."""
    revoked_at: datetime | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def active(self) -> bool:
        return self.revoked_at is None


class ApiKeyCreate(Input):
    name: Name
    admin: bool = False
