"""Contract: naming an API key to revoke it (id, whole key, or a unique prefix) on every backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from agentkeep import DatabaseManager, NotFoundError, Sync, ValidationError
from agentkeep.repositories import api_keys as module
from agentkeep.repositories.api_keys import KEY_LENGTH, MIN_PREFIX_LENGTH, PREFIX_LENGTH


def whole(start: str) -> str:
    """A key of the real length that starts with ``start``."""
    return start + "x" * (KEY_LENGTH - len(start))


@pytest.fixture
def keys_made_as(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Make the next keys ``create`` hands out these ones (so tests can share prefixes)."""

    def made(*keys: str) -> None:
        given: Iterator[str] = iter(keys)
        monkeypatch.setattr(module, "new_key", lambda: next(given))

    return made


class TestRevoke:
    @pytest.mark.parametrize(
        "length", [MIN_PREFIX_LENGTH, PREFIX_LENGTH - 1, PREFIX_LENGTH, PREFIX_LENGTH + 1, 20]
    )
    def test_any_unique_prefix_long_enough_names_the_key(
        self, db: DatabaseManager[Sync], length: int
    ) -> None:
        stored, key = db.api_keys.create("ci")
        db.api_keys.create("other")
        revoked = db.api_keys.revoke(key[:length])
        assert revoked.id == stored.id
        assert revoked.revoked_at is not None
        assert [k.name for k in db.api_keys.list() if k.active] == ["other"]

    def test_the_whole_key_and_the_id_name_it(self, db: DatabaseManager[Sync]) -> None:
        first, first_key = db.api_keys.create("one")
        second, _ = db.api_keys.create("two")
        assert db.api_keys.revoke(first_key).id == first.id
        assert db.api_keys.revoke(str(second.id)).id == second.id
        assert db.api_keys.revoke(first_key).revoked_at is not None  # again: unchanged

    def test_a_prefix_too_short_is_refused(self, db: DatabaseManager[Sync]) -> None:
        _, key = db.api_keys.create("ci")
        with pytest.raises(ValidationError, match=f"at least {MIN_PREFIX_LENGTH} characters"):
            db.api_keys.revoke(key[: MIN_PREFIX_LENGTH - 1])
        assert db.api_keys.list()[0].active

    def test_a_shared_prefix_is_refused_listing_the_candidates(
        self, db: DatabaseManager[Sync], keys_made_as: Callable[..., None]
    ) -> None:
        keys_made_as(whole("ak_samesameA"), whole("ak_samesomeB"))
        one, _ = db.api_keys.create("one")
        two, _ = db.api_keys.create("two")
        with pytest.raises(ValidationError) as refused:
            db.api_keys.revoke("ak_sames")
        message = refused.value.message
        assert "2 API keys start with 'ak_sames'" in message
        assert f"ak_samesame… (one, id {one.id})" in message
        assert f"ak_samesome… (two, id {two.id})" in message
        assert all(key.active for key in db.api_keys.list())
        assert db.api_keys.revoke("ak_samesa").id == one.id  # one more character tells them apart

    def test_a_prefix_is_compared_exactly(
        self, db: DatabaseManager[Sync], keys_made_as: Callable[..., None]
    ) -> None:
        """Case counts, and ``_`` or ``%`` in a prefix are characters, not wildcards."""
        keys_made_as(whole("ak_ab_dEFGH"), whole("ak_abXdefgh"))
        underscored, _ = db.api_keys.create("underscored")
        db.api_keys.create("other")
        with pytest.raises(NotFoundError):
            db.api_keys.revoke("ak_AB_DEFGH")
        with pytest.raises(NotFoundError):
            db.api_keys.revoke("ak_ab%d")
        assert db.api_keys.revoke("ak_ab_d").id == underscored.id

    def test_a_prefix_of_no_key_is_not_found(self, db: DatabaseManager[Sync]) -> None:
        db.api_keys.create("ci")
        with pytest.raises(NotFoundError, match="no API key matches"):
            db.api_keys.revoke("ak_nothing-like-it")
        with pytest.raises(NotFoundError):
            db.api_keys.revoke(whole("ak_"))  # the length of a key, but not one
