"""Log-in (OAuth2 password flow), token refresh, and who the caller is.

``POST /auth/token`` answers a short-lived access token (a JWT signed with the API's key)
and a refresh token. ``POST /auth/refresh`` spends a refresh token (each works once) for a
new pair, so a stolen refresh token is useful once at most and its reuse fails.
"""

from __future__ import annotations

from typing import Annotated, Literal

import asyncpg
from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from ecap.credentials import digest, new_refresh_token, verify_password
from ecap.db import users
from web.api.security import (
    DOCUMENTED_CREDENTIALS,
    Principal,
    access_token,
    caller,
    unauthenticated,
)
from web.api.state import ApiState, api_state, connection

router = APIRouter(prefix="/auth", tags=["authentication"])


class TokenPair(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (the OAuth2 token type, no secret)
    expires_in: int = Field(description="Seconds the access token is valid.")
    refresh_token: str
    refresh_expires_in: int


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=200)


class Me(BaseModel):
    username: str
    role: str
    api_key: str | None = Field(description="Prefix of the API key used, if one was.")


async def _pair(conn: asyncpg.Connection, state: ApiState, user: users.User) -> TokenPair:
    refresh = new_refresh_token()
    lifetime = state.settings.api_refresh_token_ttl
    await users.issue_refresh(conn, user.user_id, digest(refresh), lifetime)
    token, expires_in = access_token(state, user)
    return TokenPair(
        access_token=token,
        expires_in=expires_in,
        refresh_token=refresh,
        refresh_expires_in=int(lifetime.total_seconds()),
    )


@router.post("/token", summary="Log in: an access token and a refresh token")
async def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    conn: Annotated[asyncpg.Connection, Depends(connection)],
    state: Annotated[ApiState, Depends(api_state)],
) -> TokenPair:
    found = await users.login_candidate(conn, form.username)
    valid, new_hash = verify_password(form.password, found[1] if found else None)
    if found is None or not valid:
        raise unauthenticated(
            "wrong user name or password, or the user is disabled",
            "check both; an admin can list users with 'ecap users list'",
        )
    user = found[0]
    if new_hash is not None:
        await users.rehash_password(conn, user.user_id, new_hash)
    return await _pair(conn, state, user)


@router.post("/refresh", summary="Spend a refresh token for a new pair")
async def refresh(
    body: RefreshRequest,
    conn: Annotated[asyncpg.Connection, Depends(connection)],
    state: Annotated[ApiState, Depends(api_state)],
) -> TokenPair:
    user = await users.use_refresh(conn, digest(body.refresh_token))
    if user is None:
        raise unauthenticated(
            "the refresh token is unknown, used already or expired, or its user is disabled",
            "log in again with POST /api/v1/auth/token",
        )
    return await _pair(conn, state, user)


@router.get("/me", summary="Who the credentials belong to", dependencies=DOCUMENTED_CREDENTIALS)
async def me(request: Request) -> Me:
    principal: Principal = caller(request)
    return Me(username=principal.username, role=principal.role.value, api_key=principal.key_prefix)
