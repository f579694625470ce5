"""Authentication and the role check of every request.

A request proves who it is with an access token (``Authorization: Bearer <JWT>``, from
``POST /api/v1/auth/token``) or an API key (``X-API-Key``). Either way the user is read
from PostgreSQL on each request, so a disabled user or a revoked key is refused at once,
even with a token issued before, and a changed role applies at once. :func:`guard`, a
dependency of every route, then checks the caller's role against ``web.api.access``:
401 without valid credentials, 403 with a role the matrix does not allow.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime

import jwt
from fastapi import Depends, Request
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer

from ecap.credentials import Role, digest
from ecap.db import users
from web.api import access
from web.api.problems import Problem
from web.api.ratelimit import rate_limits
from web.api.state import ApiState, api_state

ALGORITHM = "HS256"
ISSUER = "ecap"
LOGIN_HINT = (
    "log in with POST /api/v1/auth/token (form fields username, password) and send "
    "'Authorization: Bearer <access_token>', or send an API key in 'X-API-Key'"
)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ecap"'}


@dataclass(frozen=True)
class Principal:
    user: users.User
    key_prefix: str | None = None
    """The API key used, if one was."""

    @property
    def username(self) -> str:
        return self.user.username

    @property
    def role(self) -> Role:
        return self.user.role

    @property
    def actor(self) -> str:
        """Who did it, for the audit trail."""
        if self.key_prefix is None:
            return self.username
        return f"{self.username} (key {self.key_prefix})"


def unauthenticated(detail: str, hint: str = LOGIN_HINT) -> Problem:
    return Problem(401, detail, hint, headers=_CHALLENGE)


def access_token(state: ApiState, user: users.User) -> tuple[str, int]:
    """A signed access token for ``user`` and its lifetime in seconds."""
    now = datetime.now(UTC)
    lifetime = state.settings.api_access_token_ttl
    claims = {
        "iss": ISSUER,
        "sub": str(user.user_id),
        "name": user.username,
        "role": user.role.value,
        "iat": now,
        "exp": now + lifetime,
    }
    return jwt.encode(claims, state.jwt_key, algorithm=ALGORITHM), int(lifetime.total_seconds())


def _user_id(state: ApiState, token: str) -> int:
    try:
        claims = jwt.decode(
            token,
            state.jwt_key,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "iss"]},
        )
        return int(claims["sub"])
    except jwt.ExpiredSignatureError as exc:
        raise unauthenticated(
            "the access token has expired",
            "get a new one with POST /api/v1/auth/refresh and your refresh token, or log in again",
        ) from exc
    except (jwt.InvalidTokenError, ValueError) as exc:
        raise unauthenticated("the access token is not valid") from exc


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def scrape_token_sent(request: Request) -> bool:
    """Whether the request carries the workers' scrape token as its bearer token."""
    given = _bearer(request)
    expected = api_state(request).scrape_token
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


async def authenticate(request: Request) -> Principal | None:
    """The caller, or None when the request carries no credentials; a :class:`Problem`
    (401) when it carries credentials that are wrong, expired, revoked or disabled."""
    state = api_state(request)
    key = request.headers.get("X-API-Key")
    token = _bearer(request)
    if key is None and token is None:
        return None
    async with state.pool.acquire() as conn:
        if key is not None:
            user = await users.user_by_key(conn, digest(key.strip()))
            if user is None:
                raise unauthenticated(
                    "the API key is unknown or revoked, or its user is disabled",
                    "ask an admin for a new key ('ecap keys create')",
                )
            return Principal(user, key.strip().split("_")[1] if key.count("_") >= 2 else None)
        assert token is not None
        user = await users.active_user(conn, _user_id(state, token))
    if user is None:
        raise unauthenticated(
            "the user of this access token is disabled or no longer exists",
            "ask an admin to enable your account",
        )
    return Principal(user)


def _route(request: Request) -> APIRoute:
    route = request.scope["route"]
    assert isinstance(route, APIRoute)
    return route


async def guard(request: Request) -> None:
    """The role check of every route (a dependency of the whole app), by the matrix."""
    path = _route(request).path.removeprefix(access.PREFIX)
    roles = access.roles_for(request.method, path)
    if roles is None:  # access.OPEN
        return
    scrape = (request.method, path) in access.SCRAPE_TOKEN_ROUTES
    if scrape and scrape_token_sent(request):
        return
    principal = await authenticate(request)
    if principal is None:
        raise unauthenticated("this route needs credentials")
    await rate_limits(request).check(principal.role, principal.username)
    if principal.role not in roles:
        allowed = ", ".join(sorted(role.value for role in roles))
        raise Problem(
            403,
            f"role {principal.role.value} may not call {request.method} {access.PREFIX}{path}",
            f"this route is for the roles {allowed}; ask an admin if you need it",
        )
    request.state.principal = principal


def caller(request: Request) -> Principal:
    """The authenticated caller (set by :func:`guard`)."""
    principal: Principal = request.state.principal
    return principal


DOCUMENTED_CREDENTIALS = [
    Depends(OAuth2PasswordBearer(tokenUrl=f"{access.PREFIX}/auth/token", auto_error=False)),
    Depends(APIKeyHeader(name="X-API-Key", auto_error=False)),
]
"""Router dependencies that only declare the two ways to authenticate in the OpenAPI
document (its docs page's "Authorize" button); :func:`guard` does the checking."""
