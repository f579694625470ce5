"""Password hashes, API keys and the API's signing key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ecap import auth
from ecap.credentials import (
    WeakPassword,
    hash_password,
    new_api_key,
    verify_password,
)
from ecap.settings import Settings


def test_a_password_verifies_against_its_argon2_hash() -> None:
    stored = hash_password("correct horse battery")
    assert (
        stored.startswith("$argon2id$"),
        verify_password("correct horse battery", stored)[0],
    ) == (
        True,
        True,
    )


def test_a_wrong_password_does_not_verify() -> None:
    assert (
        verify_password("wrong horse battery", hash_password("correct horse battery"))[0] is False
    )


def test_an_unknown_user_never_verifies() -> None:
    assert verify_password("anything at all", None) == (False, None)


def test_a_short_password_is_refused() -> None:
    with pytest.raises(WeakPassword, match="at least 12"):
        hash_password("short")


def test_an_api_key_names_its_prefix_and_is_stored_as_a_digest() -> None:
    key = new_api_key()
    assert (key.key.startswith(f"ecap_{key.prefix}_"), key.key in key.digest) == (True, False)


def test_the_embedded_signing_key_is_made_once_in_a_private_file(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, postgres_dsn=None, api_jwt_secret=None)
    first = auth.api_jwt_secret(settings)
    mode = stat.S_IMODE(auth.jwt_secret_path(settings).stat().st_mode)
    assert (mode, auth.api_jwt_secret(settings), len(first) >= 32) == (0o600, first, True)


def test_a_deployment_without_a_signing_key_fails_with_advice(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, postgres_dsn="postgresql://db/ecap", api_jwt_secret=None)
    with pytest.raises(auth.TokenError, match="set ECAP_API_JWT_SECRET from your secret store"):
        auth.api_jwt_secret(settings)


def test_a_configured_signing_key_wins_and_no_file_is_made(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        postgres_dsn="postgresql://db/ecap",
        api_jwt_secret="k" * 40,  # type: ignore[arg-type]
    )
    assert (auth.api_jwt_secret(settings), auth.jwt_secret_path(settings).exists()) == (
        b"k" * 40,
        False,
    )


def test_an_unknown_reporting_time_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        Settings(reporting_timezone="Mars/Olympus")
