"""The REST API's users, API keys and refresh tokens in PostgreSQL (docs/api.md).

A principal is a user; an API key acts as the user who owns it, with that user's role. The
API reads the user on every request, so disabling a user or revoking a key takes effect at
once, for access tokens already issued too. Writes are audited (``ecap.db.audit``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

import asyncpg

from ecap.credentials import NewApiKey, Role
from ecap.db import audit


class UserError(ValueError):
    """A user or key asked for does not exist, or cannot be made as asked."""


@dataclass(frozen=True)
class User:
    user_id: int
    username: str
    role: Role
    created_at: datetime
    disabled_at: datetime | None

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> User:
        return cls(
            row["user_id"],
            row["username"],
            Role(row["role"]),
            row["created_at"],
            row["disabled_at"],
        )


@dataclass(frozen=True)
class ApiKey:
    key_id: int
    username: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


_USER = "user_id, username, role, created_at, disabled_at"
_U_USER = ", ".join(f"u.{column}" for column in _USER.split(", "))
_KEY = "k.key_id, u.username, k.name, k.prefix, k.created_at, k.revoked_at"


async def add_user(
    conn: asyncpg.Connection, username: str, role: Role, password_hash: str, *, actor: str
) -> User:
    async with conn.transaction():
        try:
            row = await conn.fetchrow(
                f"INSERT INTO api_users (username, role, password_hash) VALUES ($1, $2, $3) "
                f"RETURNING {_USER}",
                username,
                role.value,
                password_hash,
            )
        except asyncpg.UniqueViolationError as exc:
            raise UserError(f"a user {username!r} exists already; pick another name") from exc
        except asyncpg.CheckViolationError as exc:
            raise UserError(
                f"{username!r} is not a user name: use 2-63 lower-case letters, digits, '.', "
                "'_' or '-', starting with a letter or digit"
            ) from exc
        assert row is not None
        user = User.from_row(row)
        await audit.record(
            conn,
            actor=actor,
            action="user.add",
            target=f"user:{username}",
            before=None,
            after=asdict(user),
        )
    return user


async def list_users(conn: asyncpg.Connection) -> list[User]:
    rows = await conn.fetch(f"SELECT {_USER} FROM api_users ORDER BY username")
    return [User.from_row(row) for row in rows]


async def disable_user(conn: asyncpg.Connection, username: str, *, actor: str) -> User:
    """Disable ``username`` (its tokens and keys stop working at once); idempotent."""
    async with conn.transaction():
        before = await conn.fetchrow(
            f"SELECT {_USER} FROM api_users WHERE username = $1 FOR UPDATE", username
        )
        if before is None:
            raise UserError(f"no user {username!r}; 'ecap users list' shows them")
        row = await conn.fetchrow(
            f"UPDATE api_users SET disabled_at = coalesce(disabled_at, now()) "
            f"WHERE username = $1 RETURNING {_USER}",
            username,
        )
        assert row is not None
        user = User.from_row(row)
        await audit.record(
            conn,
            actor=actor,
            action="user.disable",
            target=f"user:{username}",
            before=asdict(User.from_row(before)),
            after=asdict(user),
        )
    return user


async def login_candidate(conn: asyncpg.Connection, username: str) -> tuple[User, str] | None:
    """The enabled user ``username`` and its password hash, or None."""
    row = await conn.fetchrow(
        f"SELECT {_USER}, password_hash FROM api_users WHERE username = $1 AND disabled_at IS NULL",
        username,
    )
    return None if row is None else (User.from_row(row), row["password_hash"])


async def rehash_password(conn: asyncpg.Connection, user_id: int, password_hash: str) -> None:
    """Store a hash made with current parameters (not a change of password: not audited)."""
    await conn.execute(
        "UPDATE api_users SET password_hash = $2 WHERE user_id = $1", user_id, password_hash
    )


async def active_user(conn: asyncpg.Connection, user_id: int) -> User | None:
    """The user ``user_id`` if it exists and is enabled."""
    row = await conn.fetchrow(
        f"SELECT {_USER} FROM api_users WHERE user_id = $1 AND disabled_at IS NULL", user_id
    )
    return None if row is None else User.from_row(row)


async def create_key(
    conn: asyncpg.Connection, username: str, name: str, key: NewApiKey, *, actor: str
) -> ApiKey:
    async with conn.transaction():
        owner = await conn.fetchval(
            "SELECT user_id FROM api_users WHERE username = $1 AND disabled_at IS NULL",
            username,
        )
        if owner is None:
            raise UserError(f"no enabled user {username!r}; 'ecap users list' shows them")
        key_id = await conn.fetchval(
            "INSERT INTO api_keys (user_id, name, prefix, digest) VALUES ($1, $2, $3, $4) "
            "RETURNING key_id",
            owner,
            name,
            key.prefix,
            key.digest,
        )
        made = await _key(conn, key_id)
        await audit.record(
            conn,
            actor=actor,
            action="key.create",
            target=f"key:{key.prefix}",
            before=None,
            after=asdict(made),
        )
    return made


async def _key(conn: asyncpg.Connection, key_id: int) -> ApiKey:
    row = await conn.fetchrow(
        f"SELECT {_KEY} FROM api_keys k JOIN api_users u USING (user_id) WHERE k.key_id = $1",
        key_id,
    )
    assert row is not None
    return ApiKey(**dict(row))


async def list_keys(conn: asyncpg.Connection) -> list[ApiKey]:
    rows = await conn.fetch(
        f"SELECT {_KEY} FROM api_keys k JOIN api_users u USING (user_id) ORDER BY k.key_id"
    )
    return [ApiKey(**dict(row)) for row in rows]


async def revoke_key(conn: asyncpg.Connection, prefix: str, *, actor: str) -> ApiKey:
    """Revoke the key named ``prefix`` (it stops working at once); idempotent."""
    async with conn.transaction():
        key_id = await conn.fetchval(
            "SELECT key_id FROM api_keys WHERE prefix = $1 FOR UPDATE", prefix
        )
        if key_id is None:
            raise UserError(f"no API key {prefix!r}; 'ecap keys list' shows them")
        before = await _key(conn, key_id)
        await conn.execute(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE key_id = $1",
            key_id,
        )
        after = await _key(conn, key_id)
        await audit.record(
            conn,
            actor=actor,
            action="key.revoke",
            target=f"key:{prefix}",
            before=asdict(before),
            after=asdict(after),
        )
    return after


async def user_by_key(conn: asyncpg.Connection, digest: str) -> User | None:
    """The enabled owner of the unrevoked API key with this digest."""
    row = await conn.fetchrow(
        f"SELECT {_U_USER} FROM api_keys k "
        "JOIN api_users u USING (user_id) "
        "WHERE k.digest = $1 AND k.revoked_at IS NULL AND u.disabled_at IS NULL",
        digest,
    )
    return None if row is None else User.from_row(row)


async def issue_refresh(
    conn: asyncpg.Connection, user_id: int, digest: str, lifetime: timedelta
) -> None:
    await conn.execute(
        "INSERT INTO api_refresh_tokens (user_id, digest, expires_at) "
        "VALUES ($1, $2, now() + $3::interval)",
        user_id,
        digest,
        lifetime,
    )


async def use_refresh(conn: asyncpg.Connection, digest: str) -> User | None:
    """Spend the refresh token with this digest (each works once) and return its enabled
    user, or None when it is unknown, spent, expired or its user disabled."""
    row = await conn.fetchrow(
        f"""
        WITH spent AS (
            UPDATE api_refresh_tokens SET used_at = now()
            WHERE digest = $1 AND used_at IS NULL AND expires_at > now()
            RETURNING user_id
        )
        SELECT {_U_USER}
        FROM spent JOIN api_users u USING (user_id) WHERE u.disabled_at IS NULL
        """,
        digest,
    )
    return None if row is None else User.from_row(row)
