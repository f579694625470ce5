"""The secrets of one ``ECAP_HOME``: the bearer token of the worker web views
(docs/api-live.md), the key rule sets are signed with (docs/fraud-ops.md) and the key the
REST API signs its access tokens with (docs/api.md).

Each is its setting when set (``ECAP_API_TOKEN``, ``ECAP_RULES_SIGNING_KEY``,
``ECAP_API_JWT_SECRET``); otherwise the content of a file under ``ECAP_HOME``
(``api-token``, ``rules-signing-key``, ``api-jwt-key``), created on first need (32
random bytes, URL-safe, mode 0600), so every process of one ``ECAP_HOME`` (workers,
``ecap`` commands, tests, benchmarks) shares it. No secret has a default in code. The API's
key has a file only on the embedded default: with an external PostgreSQL its replicas must
agree, so the key must come from the settings.

Every path asks for the token except ``/health``, which answers without it with the
status alone, and with it with the details (:func:`authorized`).
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from pydantic import SecretStr

from ecap.settings import Settings, get_settings

FILE_NAME = "api-token"
"""The token file under ``ECAP_HOME`` (when ``ECAP_API_TOKEN`` is unset)."""
RULES_KEY_FILE_NAME = "rules-signing-key"
"""The rule-signing key file under ``ECAP_HOME`` (when ``ECAP_RULES_SIGNING_KEY`` is unset)."""
JWT_KEY_FILE_NAME = "api-jwt-key"
"""The API's signing key file under ``ECAP_HOME`` (embedded default only)."""
MIN_RULES_KEY_CHARS = 32
"""The shortest signing key accepted (the generated one has 43 characters)."""
OPEN_PATHS = frozenset({"/health", "/health/"})
"""The only paths answered without a token (liveness probes have none)."""
AUTHORIZED = web.RequestKey("ecap.authorized", bool)
"""Request key the middleware sets: True when the request carried the token."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


class TokenError(Exception):
    """A secret cannot be had: its file holds none, cannot be written, or it is too short."""


def token_path(settings: Settings | None = None) -> Path:
    """Where the token lives when ``ECAP_API_TOKEN`` is unset (absolute)."""
    settings = settings or get_settings()
    return (settings.home / FILE_NAME).resolve()


def _configured(settings: Settings) -> str | None:
    value = settings.api_token.get_secret_value().strip() if settings.api_token else ""
    return value or None  # ECAP_API_TOKEN="" means unset, as for the other settings


def api_token(settings: Settings | None = None) -> str:
    """``ECAP_API_TOKEN``, or the token file's content (the file is created if missing)."""
    settings = settings or get_settings()
    configured = _configured(settings)
    if configured is not None:
        return configured
    path = token_path(settings)
    if not path.exists():
        _create(path)
    token = path.read_text().strip()
    if not token:
        raise TokenError(
            f"{path} is empty; delete it (a new token is made on next start; restart the "
            "workers) or set ECAP_API_TOKEN"
        )
    return token


def rules_key_path(settings: Settings | None = None) -> Path:
    """Where the rule-signing key lives when ``ECAP_RULES_SIGNING_KEY`` is unset."""
    settings = settings or get_settings()
    return (settings.home / RULES_KEY_FILE_NAME).resolve()


def rules_signing_key(settings: Settings | None = None) -> bytes:
    """``ECAP_RULES_SIGNING_KEY``, or the key file's content (the file is created if
    missing); :class:`TokenError` says what to do when neither gives a usable key."""
    settings = settings or get_settings()
    return _signing_key(
        settings.rules_signing_key,
        "ECAP_RULES_SIGNING_KEY",
        rules_key_path(settings),
        what="the rule-signing key",
        where="the same on every worker and wherever 'ecap rules push' runs",
    )


def jwt_secret_path(settings: Settings | None = None) -> Path:
    """Where the API's signing key lives on the embedded default."""
    settings = settings or get_settings()
    return (settings.home / JWT_KEY_FILE_NAME).resolve()


def api_jwt_secret(settings: Settings | None = None) -> bytes:
    """``ECAP_API_JWT_SECRET``; on the embedded default, else the key file's content (the
    file is created if missing). With an external PostgreSQL (a deployment, several
    replicas) an unset key is a :class:`TokenError` that says how to set it."""
    settings = settings or get_settings()
    configured = settings.api_jwt_secret
    if not (configured and configured.get_secret_value().strip()) and not (
        settings.embedded_database
    ):
        raise TokenError(
            "ECAP_API_JWT_SECRET is not set, and this API uses an external PostgreSQL "
            "(ECAP_POSTGRES_DSN): every replica must sign tokens with the same key, so none "
            "is generated; set ECAP_API_JWT_SECRET from your secret store (a Kubernetes "
            "Secret) to a random value such as the output of 'openssl rand -base64 32'"
        )
    return _signing_key(
        configured,
        "ECAP_API_JWT_SECRET",
        jwt_secret_path(settings),
        what="the API signing key",
        where="the same on every API replica",
    )


def _signing_key(
    configured: SecretStr | None, setting: str, path: Path, *, what: str, where: str
) -> bytes:
    """The configured key, or the content of ``path`` (created if missing), checked to be
    long enough."""
    value = configured.get_secret_value().strip() if configured else ""
    source = setting
    if not value:
        source = str(path)
        try:
            if not path.exists():
                _create(path)
            value = path.read_text().strip()
        except OSError as exc:
            raise TokenError(
                f"cannot read or create {what} {path} ({exc.strerror}); make ECAP_HOME "
                f"writable or set {setting}"
            ) from exc
    if len(value) < MIN_RULES_KEY_CHARS:
        raise TokenError(
            f"{what} in {source} has {len(value)} characters, fewer than "
            f"{MIN_RULES_KEY_CHARS}; set {setting} to a random value such as the output of "
            f"'openssl rand -base64 32' ({where}), or delete the file to have a new key made"
        )
    return value.encode()


def _create(path: Path) -> None:
    """Write a new token to ``path`` unless another process does so first.

    The token is written to a private temporary file that is then hard-linked into place,
    so no process ever reads a half-written token, and of processes starting together
    the first link wins and the others read its token.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{FILE_NAME}-", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
        with contextlib.suppress(FileExistsError):  # another process was first: keep its
            os.link(temporary, path)
    finally:
        os.unlink(temporary)


DEMO_USERS_DIR = "demo-users"
"""Folder under ``ECAP_HOME`` holding one password file per demo user (``ecap users demo``)."""


def demo_password_path(username: str, settings: Settings | None = None) -> Path:
    settings = settings or get_settings()
    return (settings.home / DEMO_USERS_DIR / username).resolve()


def demo_password(username: str, settings: Settings | None = None) -> tuple[str, bool]:
    """The demo user's password from its file, made (random, mode 0600) if missing; and
    whether it was made now."""
    path = demo_password_path(username, settings)
    made = not path.exists()
    if made:
        _create(path)
    return path.read_text().strip(), made


def token_source(settings: Settings | None = None) -> str:
    """Where the token of these settings comes from, for messages (never the token)."""
    settings = settings or get_settings()
    if _configured(settings) is not None:
        return "the value of ECAP_API_TOKEN"
    return f"the content of the file {token_path(settings)}"


def header(settings: Settings | None = None) -> dict[str, str]:
    """The ``Authorization`` header for the workers of these settings."""
    return {"Authorization": f"Bearer {api_token(settings)}"}


def curl_example(url: str, settings: Settings | None = None) -> str:
    """A shell command that reads ``url`` with the token, without showing the token."""
    settings = settings or get_settings()
    if _configured(settings) is not None:
        shell_value = "$ECAP_API_TOKEN"
    else:
        shell_value = f"$(cat {token_path(settings)})"
    return f'curl -H "Authorization: Bearer {shell_value}" {url}'


def authorized(request: web.Request) -> bool:
    """Whether the request carried the token (set by :func:`middleware`; an open path
    such as ``/health`` uses it to decide what to show)."""
    return request.get(AUTHORIZED, False)


def middleware(token: str, source: str) -> Middleware:
    """An aiohttp middleware answering 401 to any request but ``/health`` without
    ``Authorization: Bearer <token>``, and marking each request :func:`authorized` or
    not. ``source`` says where the token is (see :func:`token_source`) in the 401's
    message."""
    expected = token.encode()
    advice = (
        f"send 'Authorization: Bearer <token>'; the token is {source} "
        "('ecap workers status' shows how)"
    )

    @web.middleware
    async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
        given = request.headers.get("Authorization", "")
        scheme, _, value = given.strip().partition(" ")
        request[AUTHORIZED] = scheme.lower() == "bearer" and hmac.compare_digest(
            value.strip().encode("utf-8", "replace"), expected
        )
        if request[AUTHORIZED] or request.path in OPEN_PATHS:
            return await handler(request)
        if not given:
            problem = "missing bearer token"
        elif scheme.lower() != "bearer":
            problem = "the Authorization header is not a bearer token"
        else:
            problem = "wrong bearer token"
        return web.json_response(
            {"error": f"{problem}: {advice}"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="ecap"'},
        )

    return require_token
