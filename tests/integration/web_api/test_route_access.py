"""Every route of the app, walked from ``app.routes`` (not from the OpenAPI document):
without credentials 401, with each role the matrix forbids 403, with the roles it allows
neither; and only the open routes answer without credentials."""

from __future__ import annotations

import re

import pytest

from ecap.credentials import Role
from web.api import access
from web.api.app import api_routes

from .conftest import Api

ROUTES = sorted(access.MATRIX)
PROTECTED = [route for route in ROUTES if access.MATRIX[route] is not access.OPEN]


def _call(api: Api, method: str, path: str, headers: dict[str, str] | None = None) -> int:
    url = access.PREFIX + re.sub(r"\{[^}]+\}", "1", path)
    return api.client.request(method, url, headers=headers, json={}).status_code


def test_the_walked_routes_are_exactly_the_matrix(api: Api) -> None:
    assert api_routes(api.client.app) == set(access.MATRIX)  # type: ignore[arg-type]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_a_protected_route_answers_401_without_credentials(
    api: Api, method: str, path: str
) -> None:
    assert _call(api, method, path) == 401


@pytest.mark.parametrize(
    ("method", "path", "role"),
    [
        (method, path, role)
        for method, path in PROTECTED
        for role in Role
        if role not in (access.MATRIX[(method, path)] or ())
    ],
)
def test_a_role_the_matrix_forbids_gets_403(api: Api, method: str, path: str, role: Role) -> None:
    assert _call(api, method, path, api.as_role(role)) == 403


@pytest.mark.parametrize(
    ("method", "path", "role"),
    [
        (method, path, role)
        for method, path in PROTECTED
        for role in access.MATRIX[(method, path)] or ()
    ],
)
def test_a_role_the_matrix_allows_passes_the_check(
    api: Api, method: str, path: str, role: Role
) -> None:
    assert _call(api, method, path, api.as_role(role)) not in (401, 403)


@pytest.mark.parametrize(("method", "path"), [r for r in ROUTES if r not in PROTECTED])
def test_an_open_route_answers_without_credentials(api: Api, method: str, path: str) -> None:
    assert _call(api, method, path) not in (401, 403)


def test_a_wrong_bearer_token_is_401_not_a_pass(api: Api) -> None:
    assert _call(api, "GET", "/cases", {"Authorization": "Bearer not-a-jwt"}) == 401


def test_the_scrape_token_reads_metrics_but_no_data(api: Api) -> None:
    from ecap import auth

    scrape = {"Authorization": f"Bearer {auth.api_token(api.settings)}"}
    assert (_call(api, "GET", "/metrics", scrape), _call(api, "GET", "/cases", scrape)) == (
        200,
        401,
    )
