"""Log-in, refresh tokens, API keys, and credentials that stop working at once."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import jwt
import pytest
from fastapi.testclient import TestClient

from ecap import auth
from ecap.credentials import Role, hash_password, new_api_key
from ecap.db import users
from ecap.settings import Settings
from web.api.app import create_app

from .conftest import PASSWORD, Api


def _me(api: Api, headers: dict[str, str]) -> tuple[int, str | None]:
    response = api.client.get("/api/v1/auth/me", headers=headers)
    return response.status_code, response.json().get("username")


def _add_user(api: Api, name: str, role: Role) -> None:
    async def work() -> None:
        conn = await asyncpg.connect(api.dsn)
        try:
            await users.add_user(conn, name, role, hash_password(PASSWORD), actor="test")
        finally:
            await conn.close()

    asyncio.run(work())


def _on_conn(api: Api, call):  # type: ignore[no-untyped-def]
    async def work():  # type: ignore[no-untyped-def]
        conn = await asyncpg.connect(api.dsn)
        try:
            return await call(conn)
        finally:
            await conn.close()

    return asyncio.run(work())


def test_a_password_log_in_returns_a_token_that_authenticates(api: Api) -> None:
    token = api.login("ivy")["access_token"]
    assert _me(api, {"Authorization": f"Bearer {token}"}) == (200, "ivy")


def test_a_wrong_password_is_401_with_problem_details(api: Api) -> None:
    response = api.client.post(
        "/api/v1/auth/token", data={"username": "ivy", "password": "wrong password!"}
    )
    body = response.json()
    assert (response.status_code, response.headers["content-type"], "hint" in body) == (
        401,
        "application/problem+json",
        True,
    )


def test_the_access_token_expires_after_its_lifetime(api: Api) -> None:
    token = api.login("ivy")["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == api.settings.api_access_token_ttl.total_seconds()


def test_an_expired_token_is_401_saying_to_refresh(api: Api) -> None:
    token = jwt.encode(
        {"iss": "ecap", "sub": "1", "iat": int(time.time()) - 120, "exp": int(time.time()) - 60},
        auth.api_jwt_secret(api.settings),
        algorithm="HS256",
    )
    response = api.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert (response.status_code, "refresh" in response.json()["hint"]) == (401, True)


def test_a_token_signed_with_another_key_is_401(api: Api) -> None:
    token = jwt.encode(
        {"iss": "ecap", "sub": "1", "iat": int(time.time()), "exp": int(time.time()) + 60},
        b"another-key-of-more-than-thirty-two-characters",
        algorithm="HS256",
    )
    assert _me(api, {"Authorization": f"Bearer {token}"})[0] == 401


def test_a_refresh_token_gives_a_new_pair_once(api: Api) -> None:
    refresh = api.login("ivy")["refresh_token"]
    first = api.client.post("/api/v1/auth/refresh", json={"refresh_token": refresh})
    again = api.client.post("/api/v1/auth/refresh", json={"refresh_token": refresh})
    new_token = first.json()["access_token"]
    assert (first.status_code, again.status_code) == (200, 401)
    assert _me(api, {"Authorization": f"Bearer {new_token}"}) == (200, "ivy")


def test_disabling_a_user_stops_its_issued_token_at_once(api: Api) -> None:
    _add_user(api, "dora", Role.INVESTIGATOR)
    headers = {"Authorization": f"Bearer {api.login('dora')['access_token']}"}
    before = _me(api, headers)[0]
    _on_conn(api, lambda conn: users.disable_user(conn, "dora", actor="test"))
    assert (before, _me(api, headers)[0]) == (200, 401)


def test_disabling_a_user_stops_its_refresh_token(api: Api) -> None:
    _add_user(api, "rita", Role.ANALYST)
    refresh = api.login("rita")["refresh_token"]
    _on_conn(api, lambda conn: users.disable_user(conn, "rita", actor="test"))
    response = api.client.post("/api/v1/auth/refresh", json={"refresh_token": refresh})
    assert response.status_code == 401


def test_an_api_key_authenticates_as_its_user(api: Api) -> None:
    key = new_api_key()
    _on_conn(api, lambda conn: users.create_key(conn, "ana", "dashboard", key, actor="test"))
    response = api.client.get("/api/v1/auth/me", headers={"X-API-Key": key.key})
    assert response.json() == {"username": "ana", "role": "analyst", "api_key": key.prefix}


def test_revoking_a_key_stops_it_at_once(api: Api) -> None:
    key = new_api_key()
    _on_conn(api, lambda conn: users.create_key(conn, "ivy", "script", key, actor="test"))
    before = _me(api, {"X-API-Key": key.key})[0]
    _on_conn(api, lambda conn: users.revoke_key(conn, key.prefix, actor="test"))
    assert (before, _me(api, {"X-API-Key": key.key})[0]) == (200, 401)


def test_the_key_itself_is_not_stored(api: Api) -> None:
    key = new_api_key()
    _on_conn(api, lambda conn: users.create_key(conn, "ivy", "stored?", key, actor="test"))
    rows = api.sql("SELECT * FROM api_keys WHERE prefix = $1", key.prefix)
    assert key.key not in str(dict(rows[0]))


def test_user_and_key_writes_are_audited(api: Api) -> None:
    key = new_api_key()
    _on_conn(api, lambda conn: users.create_key(conn, "ivy", "audited", key, actor="cli:root"))
    _on_conn(api, lambda conn: users.revoke_key(conn, key.prefix, actor="cli:root"))
    rows = api.sql(
        "SELECT actor, action, before IS NULL AS fresh FROM audit_log WHERE target = $1 "
        "ORDER BY audit_id",
        f"key:{key.prefix}",
    )
    assert [tuple(row) for row in rows] == [
        ("cli:root", "key.create", True),
        ("cli:root", "key.revoke", False),
    ]


def test_the_docs_can_be_switched_off(api: Api) -> None:
    settings = api.settings.model_copy(update={"api_docs_enabled": False})
    with TestClient(create_app(settings)) as client:
        codes = [client.get(f"/api/v1/{p}").status_code for p in ("openapi.json", "docs")]
    assert codes == [404, 404]


def test_the_docs_are_open_when_on(api: Api) -> None:
    codes = [api.client.get(f"/api/v1/{p}").status_code for p in ("openapi.json", "docs")]
    assert codes == [200, 200]


def test_a_deployment_without_a_signing_key_does_not_start(api: Api) -> None:
    settings = Settings(home=api.settings.home, postgres_dsn=api.dsn, api_jwt_secret=None)
    with pytest.raises(auth.TokenError, match="set ECAP_API_JWT_SECRET"):
        create_app(settings)
