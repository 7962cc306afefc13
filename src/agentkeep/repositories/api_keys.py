"""Stored API keys: made with ``agentkeep keys create``, checked by the HTTP API.

A key is ``ak_`` followed by 32 random bytes (``secrets.token_urlsafe(32)``: 43 characters). Only
its SHA-256 digest is stored. A slow password hash (bcrypt, scrypt, Argon2) exists to make
guessing a *low-entropy* secret from its hash expensive; a key with 256 random bits cannot be
guessed however fast the hash is, so a plain SHA-256 is as safe here and lets the server find a
key by its digest (a unique index) instead of trying a slow hash against every stored key.

The key's first characters (``prefix``: ``ak_`` and 8 more) are stored in the clear so that a
listing can show which key is which; 48 random bits say nothing useful about the rest.

A key is named (to revoke it) by its id, by the whole key (found by its digest), or by any prefix
of it at least ``ak_`` and 4 characters long. A longer prefix is compared on the characters that
are stored: what follows the first 11 cannot be checked, since only a digest of the key is kept.
A prefix that several keys share is refused with the candidates listed.

``touch`` records when keys were last used. The API calls it in batches, at most once a minute per
key and server, so serving a request never costs a write (``api/auth.py``).
"""

from __future__ import annotations

import builtins
import hashlib
import secrets
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Row, func, insert, select, update

from agentkeep.db.tables import api_keys
from agentkeep.db.types import new_id, utcnow
from agentkeep.errors import NotFoundError, ValidationError
from agentkeep.models.api_keys import ApiKey, ApiKeyCreate
from agentkeep.models.common import IdLike, to_uuid, validate_input
from agentkeep.repositories.base import ModeT, Repository, load, load_all, operation

CACHE_TTL = 5.0
"""Seconds a server trusts its read of the active keys: the longest a CLI change waits to apply."""

KEY_PREFIX = "ak_"
PREFIX_LENGTH = len(KEY_PREFIX) + 8
"""How many of a key's first characters are stored in the clear."""
MIN_PREFIX_LENGTH = len(KEY_PREFIX) + 4
"""The shortest prefix that may name a key: ``ak_`` and 4 characters (24 random bits)."""
KEY_LENGTH = len(KEY_PREFIX) + 43
_PUBLIC = [c for c in api_keys.c if c.name != "key_hash"]


def digest(key: str) -> str:
    """The SHA-256 hex digest a key is stored and looked up by."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


class ApiKeyRepository(Repository[ModeT]):
    """SQL for the ``api_keys`` table."""

    @operation("write", single=True)
    def create(self, name: str, *, admin: bool = False) -> tuple[ApiKey, str]:
        """Make a key named ``name`` (names need not be unique); ``admin``: it may also change
        the whole store at once (sync or export the configuration, purge conversations).

        Returns the stored key's description and the key itself, which is not kept anywhere:
        this is the only time it can be read.
        """
        data = validate_input(ApiKeyCreate, {"name": name, "admin": admin})
        key = new_key()
        values = {
            "id": new_id(),
            "name": data.name,
            "prefix": key[:PREFIX_LENGTH],
            "key_hash": digest(key),
            "admin": data.admin,
            "created_at": utcnow(),
        }
        conn = self.conn
        row = conn.execute(insert(api_keys).values(values).returning(*_PUBLIC)).one()
        return _api_key(row), key

    @operation("read", single=True)
    def list(self) -> builtins.list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        query = select(*_PUBLIC).order_by(api_keys.c.created_at, api_keys.c.id)
        conn = self.conn
        return load_all(ApiKey, conn.execute(query).all())

    @operation("write")
    def revoke(self, id_or_prefix: IdLike) -> ApiKey:
        """Revoke the key with this id, the key given whole, or a prefix of it (at least
        ``ak_`` and 4 characters) that no other key shares.

        Revoking a revoked key changes nothing and returns it.

        Raises:
            NotFoundError: No key matches.
            ValidationError: Neither an id nor a long enough prefix, or a prefix several keys
                share (the message lists them).
        """
        where = _matching(id_or_prefix)
        conn = self.conn
        query = select(*_PUBLIC).where(where).order_by(api_keys.c.created_at, api_keys.c.id)
        found = conn.execute(query).all()
        if not found:
            raise NotFoundError(f"no API key matches {str(id_or_prefix)[:80]!r}", field="key")
        if len(found) > 1:
            candidates = "; ".join(_candidate(row) for row in found)
            raise ValidationError(
                f"{len(found)} API keys start with {str(id_or_prefix).strip()!r}: {candidates}. "
                "Give more of the key, the whole key, or an id",
                field="key",
            )
        (row,) = found
        if row.revoked_at is not None:
            return _api_key(row)
        revoked = (
            update(api_keys)
            .where(api_keys.c.id == row.id)
            .values(revoked_at=utcnow())
            .returning(*_PUBLIC)
        )
        return _api_key(conn.execute(revoked).one())

    @operation("read", single=True)
    def active_hashes(self) -> set[str]:
        """The digests of every key that is not revoked."""
        return set(self._active())

    @operation("read", single=True)
    def active(self) -> dict[str, bool]:
        """The digest of every key that is not revoked, and whether it is an admin key."""
        return self._active()

    def _active(self) -> dict[str, bool]:
        query = select(api_keys.c.key_hash, api_keys.c.admin).where(api_keys.c.revoked_at.is_(None))
        return {key_hash: bool(admin) for key_hash, admin in self.conn.execute(query).all()}

    @operation("write", single=True)
    def touch(self, key_hashes: Iterable[str]) -> None:
        """Record that the active keys with these digests were used now (one statement)."""
        hashes = sorted(set(key_hashes))
        if not hashes:
            return
        statement = (
            update(api_keys)
            .where(api_keys.c.key_hash.in_(hashes), api_keys.c.revoked_at.is_(None))
            .values(last_used_at=utcnow())
        )
        conn = self.conn
        conn.execute(statement)


def _matching(id_or_prefix: IdLike) -> ColumnElement[bool]:
    """Which rows ``id_or_prefix`` names: an id, a whole key, or a prefix of one."""
    text = str(id_or_prefix).strip()
    if not text.startswith(KEY_PREFIX):
        try:
            return api_keys.c.id == to_uuid(id_or_prefix, "key")
        except ValidationError:
            raise ValidationError(
                f"{text[:80]!r} is neither an API key's id nor its prefix ({KEY_PREFIX}…)",
                field="key",
            ) from None
    if len(text) >= KEY_LENGTH:
        return api_keys.c.key_hash == digest(text)
    if len(text) < MIN_PREFIX_LENGTH:
        raise ValidationError(
            f"{text!r} is too short to name an API key: give at least {MIN_PREFIX_LENGTH} "
            f"characters ({KEY_PREFIX} and {MIN_PREFIX_LENGTH - len(KEY_PREFIX)} more), "
            "the whole key, or its id",
            field="key",
        )
    if len(text) >= PREFIX_LENGTH:  # the stored characters are all that can be compared
        return api_keys.c.prefix == text[:PREFIX_LENGTH]
    # substr, not LIKE: SQLite's LIKE ignores case, and "_" is a wildcard to it
    return func.substr(api_keys.c.prefix, 1, len(text)) == text


def _candidate(row: Row[Any]) -> str:
    revoked = ", revoked" if row.revoked_at is not None else ""
    return f"{row.prefix}… ({row.name}{revoked}, id {row.id})"


def _api_key(row: Row[Any]) -> ApiKey:
    return load(ApiKey, row)
