"""Credentials of the REST API's principals: roles, password hashes, API keys and refresh
tokens (docs/api.md). Pure: no storage here (that is ``ecap.db.users``).

- Passwords are hashed with argon2id (pwdlib's recommended parameters); a stored hash
  made with older parameters is re-hashed on the next successful log-in.
- API keys and refresh tokens are 32 random bytes, so a fast hash (SHA-256) of them
  cannot be brute-forced; only the hash is stored, and a key is shown once, when made.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum

from pwdlib import PasswordHash

API_KEY_PREFIX = "ecap_"
MIN_PASSWORD_CHARS = 12

_hasher = PasswordHash.recommended()
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
"""Verified against when a user is unknown, so a log-in takes as long either way."""


class Role(StrEnum):
    """What a principal may do; the routes each may call are ``web.api.access.MATRIX``."""

    ANALYST = "analyst"
    INVESTIGATOR = "investigator"
    ADMIN = "admin"


class WeakPassword(ValueError):
    """A password too short to be given to a user."""


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise WeakPassword(
            f"the password has {len(password)} characters; give at least {MIN_PASSWORD_CHARS}"
        )
    return _hasher.hash(password)


def verify_password(password: str, stored: str | None) -> tuple[bool, str | None]:
    """Whether ``password`` matches ``stored`` (None: unknown user, always False), and a
    new hash to store when the stored one used older parameters."""
    if stored is None:
        _hasher.verify(password, _DUMMY_HASH)
        return False, None
    return _hasher.verify_and_update(password, stored)


def digest(secret: str) -> str:
    """The stored form of an API key or a refresh token."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class NewApiKey:
    key: str
    """``ecap_<prefix>_<secret>``: shown once, never stored."""
    prefix: str
    """Eight characters naming the key in listings and logs (not secret)."""

    @property
    def digest(self) -> str:
        return digest(self.key)


def new_api_key() -> NewApiKey:
    prefix = secrets.token_hex(4)
    return NewApiKey(f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}", prefix)


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)
