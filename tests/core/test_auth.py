"""API keys and passwords: what is stored never reveals what was given."""

from __future__ import annotations

from services.core.auth import (
    api_key_matches,
    hash_api_key,
    hash_password,
    key_prefix,
    new_api_key,
    password_matches,
)


def test_new_keys_are_random_and_carry_their_lookup_prefix() -> None:
    first, second = new_api_key(), new_api_key()
    assert first.clear != second.clear and first.prefix != second.prefix
    assert first.clear.startswith(f"vs_{first.prefix}_")
    assert len(first.clear) > 50
    assert key_prefix(first.clear) == first.prefix
    assert first.hash == hash_api_key(first.clear) and first.clear not in first.hash


def test_keys_match_only_their_own_hash() -> None:
    key = new_api_key()
    assert api_key_matches(key.clear, key.hash)
    assert not api_key_matches(key.clear + "x", key.hash)
    assert not api_key_matches(new_api_key().clear, key.hash)


def test_malformed_keys_have_no_prefix() -> None:
    for presented in ("", "Bearer", "vs_", "vs_short_x", "xx_123456789012_secret", "vs123"):
        assert key_prefix(presented) is None


def test_passwords_use_argon2_and_never_raise_on_nonsense() -> None:
    stored = hash_password("correct horse battery")
    assert stored.startswith("$argon2id$") and "correct" not in stored
    assert password_matches("correct horse battery", stored)
    assert not password_matches("Correct horse battery", stored)
    assert not password_matches("anything", "not-a-hash")
