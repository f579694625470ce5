"""Rate limits per principal and per role, counted in the real Redis: over its role's
limit a user gets 429 with Retry-After; another user of the same role, and a role with
its own limit, go on."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from ecap.credentials import Role
from web.api.app import create_app

from .conftest import PASSWORD, Api


@pytest.fixture
def limited(api: Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The app on the same database, analysts limited to 3 requests a minute (a fresh key
    prefix per test, so earlier runs' counts in Redis do not matter)."""
    monkeypatch.setattr("web.api.ratelimit.KEY_PREFIX", f"ecap-api-test-{uuid.uuid4().hex}")
    settings = api.settings.model_copy(
        update={
            "api_rate_limits": {"analyst": "3/minute", "investigator": "600/minute"},
            "home": api.settings.home / uuid.uuid4().hex,
        }
    )
    with TestClient(create_app(settings)) as client:
        yield client


def _token(client: TestClient, username: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_over_its_roles_limit_a_user_gets_429_with_retry_after(limited: TestClient) -> None:
    headers = _token(limited, "ana")
    codes = [limited.get("/api/v1/auth/me", headers=headers).status_code for _ in range(3)]
    over = limited.get("/api/v1/auth/me", headers=headers)
    assert codes == [200, 200, 200]
    assert over.status_code == 429
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    assert over.headers["content-type"] == "application/problem+json"
    assert "over the rate limit of the role analyst" in over.json()["detail"]


def test_each_principal_counts_on_its_own_and_each_role_has_its_limit(
    limited: TestClient, api: Api
) -> None:
    for _ in range(4):
        limited.get("/api/v1/auth/me", headers=_token(limited, "ana"))
    ivy = _token(limited, "ivy")
    assert [limited.get("/api/v1/auth/me", headers=ivy).status_code for _ in range(5)] == [200] * 5
    assert api.client.get("/api/v1/auth/me", headers=api.as_role(Role.ANALYST)).status_code == 200
