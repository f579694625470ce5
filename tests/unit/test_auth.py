"""The API token: where it comes from, and the middleware that asks every route but
``/health`` for it (on a worker's whole aiohttp application, Faust's own routes included)."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr
from typer.testing import CliRunner

from ecap import auth, cli, faust_app, workers
from ecap.embedded import process
from ecap.settings import Settings, get_settings

TOKEN = "s3cret-token"


def settings_in(home: Path, token: str | None = None) -> Settings:
    return Settings(home=home, api_token=SecretStr(token) if token is not None else None)


# ---------------------------------------------------------------------- the token


def test_token_file_is_created_private_and_then_reused(tmp_path: Path) -> None:
    settings = settings_in(tmp_path / "home")
    first = auth.api_token(settings)
    path = tmp_path / "home" / auth.FILE_NAME
    assert path.read_text().strip() == first
    assert len(first) >= 40  # token_urlsafe(32)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert auth.api_token(settings) == first
    assert auth.api_token(settings_in(tmp_path / "home")) == first  # another process
    assert sorted(p.name for p in path.parent.iterdir()) == [auth.FILE_NAME]  # no leftovers


def test_each_home_has_its_own_token(tmp_path: Path) -> None:
    assert auth.api_token(settings_in(tmp_path / "a")) != auth.api_token(
        settings_in(tmp_path / "b")
    )


def test_ecap_api_token_wins_and_no_file_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / auth.FILE_NAME).write_text("from-the-file\n")
    monkeypatch.setenv("ECAP_API_TOKEN", TOKEN)
    settings = Settings(home=tmp_path / "other")
    assert auth.api_token(settings) == TOKEN
    assert auth.header(settings) == {"Authorization": f"Bearer {TOKEN}"}
    assert not (tmp_path / "other").exists()
    assert TOKEN not in repr(settings)
    assert auth.token_source(settings) == "the value of ECAP_API_TOKEN"
    assert "$ECAP_API_TOKEN" in auth.curl_example("http://h:1/kpis/current", settings)


def test_empty_ecap_api_token_means_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ECAP_API_TOKEN", "")
    (tmp_path / auth.FILE_NAME).write_text("from-the-file\n")
    assert auth.api_token(Settings(home=tmp_path)) == "from-the-file"


def test_an_empty_token_file_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / auth.FILE_NAME).write_text("\n")
    with pytest.raises(auth.TokenError, match=str(tmp_path / auth.FILE_NAME)):
        auth.api_token(settings_in(tmp_path))


def test_curl_example_reads_the_file_and_never_shows_the_token(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    token = auth.api_token(settings)
    example = auth.curl_example("http://127.0.0.1:6066/kpis/current", settings)
    path = (tmp_path / auth.FILE_NAME).resolve()
    assert example == (
        f'curl -H "Authorization: Bearer $(cat {path})" http://127.0.0.1:6066/kpis/current'
    )
    assert token not in example


# ---------------------------------------------------------------------- the rule-signing key


def test_a_demo_password_file_is_private_random_and_then_reused(tmp_path: Path) -> None:
    settings = settings_in(tmp_path / "home")
    first, made = auth.demo_password("demo-admin", settings)
    path = auth.demo_password_path("demo-admin", settings)
    assert made
    assert path.read_text().strip() == first
    assert len(first) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert auth.demo_password("demo-admin", settings) == (first, False)
    assert auth.demo_password("demo-analyst", settings)[0] != first


def test_demo_users_are_refused_with_an_external_database(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ECAP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ECAP_POSTGRES_DSN", "postgresql://nobody@127.0.0.1:1/none")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli.app, ["users", "demo"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "demo users are for the embedded default only" in result.output
    assert not (tmp_path / "home" / auth.DEMO_USERS_DIR).exists()


def test_rules_signing_key_file_is_created_private_and_then_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ECAP_RULES_SIGNING_KEY", raising=False)
    settings = settings_in(tmp_path / "home")
    first = auth.rules_signing_key(settings)
    path = tmp_path / "home" / auth.RULES_KEY_FILE_NAME
    assert path.read_text().strip().encode() == first
    assert len(first) >= auth.MIN_RULES_KEY_CHARS
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert auth.rules_signing_key(settings_in(tmp_path / "home")) == first  # another process
    assert auth.rules_signing_key(settings_in(tmp_path / "other")) != first
    assert auth.api_token(settings).encode() != first


def test_ecap_rules_signing_key_wins_and_no_file_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "k" * auth.MIN_RULES_KEY_CHARS
    monkeypatch.setenv("ECAP_RULES_SIGNING_KEY", key)
    settings = Settings(home=tmp_path / "home")
    assert auth.rules_signing_key(settings) == key.encode()
    assert not (tmp_path / "home").exists()
    assert key not in repr(settings)


def test_a_short_rules_signing_key_is_an_error_saying_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ECAP_RULES_SIGNING_KEY", "secret")
    with pytest.raises(auth.TokenError, match=r"6 characters, fewer than 32.*openssl rand"):
        auth.rules_signing_key(Settings(home=tmp_path))


# ---------------------------------------------------------------------- the middleware


async def _ok(request: web.Request) -> web.Response:
    return web.json_response({"path": request.path, "authorized": auth.authorized(request)})


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    app = web.Application(middlewares=[auth.middleware(TOKEN, "the file /x/api-token")])
    for path in ("/health", "/health/", "/kpis/current", "/metrics/"):
        app.router.add_get(path, _ok)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def test_no_token_gets_401_saying_what_to_do(client: TestClient) -> None:
    response = await client.get("/kpis/current")
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    error = (await response.json())["error"]
    assert error.startswith("missing bearer token")
    assert "Authorization: Bearer <token>" in error
    assert "/x/api-token" in error
    assert "ecap workers status" in error


@pytest.mark.parametrize(
    "header",
    [f"Bearer {TOKEN}x", "Bearer ", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN[:-1]}", "Bearer é"],
)
async def test_a_wrong_token_gets_401(client: TestClient, header: str) -> None:
    response = await client.get("/metrics/", headers={"Authorization": header})
    assert response.status == 401
    assert TOKEN not in (await response.text())


async def test_the_right_token_passes(client: TestClient) -> None:
    for header in (f"Bearer {TOKEN}", f"bearer {TOKEN}"):
        response = await client.get("/kpis/current", headers={"Authorization": header})
        assert response.status == 200
        assert await response.json() == {"path": "/kpis/current", "authorized": True}


async def test_health_is_open_and_knows_whether_the_token_came(client: TestClient) -> None:
    for path in ("/health", "/health/"):
        response = await client.get(path)
        assert response.status == 200, path
        assert (await response.json())["authorized"] is False
    for header in ({"Authorization": f"Bearer {TOKEN}"}, {"Authorization": "Bearer wrong"}):
        response = await client.get("/health", headers=header)
        assert (await response.json())["authorized"] is (header["Authorization"].endswith(TOKEN))


async def test_an_unknown_path_without_token_gets_401_not_404(client: TestClient) -> None:
    assert (await client.get("/health/../kpis/current")).status == 401
    assert (await client.get("/no/such/view")).status == 401
    response = await client.get("/no/such/view", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status == 404


async def test_a_worker_app_guards_fausts_own_routes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ECAP_API_TOKEN", raising=False)
    settings = Settings(home=tmp_path, kafka_bootstrap="127.0.0.1:9")
    spec = workers.worker_spec("alerts", 0, 6099, settings)
    app = faust_app.create_app(spec, settings)
    app.web.init_server()  # what the worker does before serving: Faust's blueprints
    token = auth.api_token(settings)
    async with TestClient(TestServer(app.web.web_app)) as test_client:
        for path in ("/", "/router/", "/table/"):
            assert (await test_client.get(path)).status == 401, path
        response = await test_client.get("/table/", headers={"Authorization": f"Bearer {token}"})
        assert response.status == 200


# ---------------------------------------------------------------------- the command line


def test_workers_status_shows_how_to_authenticate_without_the_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("ECAP_HOME", str(home))
    monkeypatch.delenv("ECAP_API_TOKEN", raising=False)
    get_settings.cache_clear()
    try:
        pid = os.getpid()  # a running process stands in for a worker
        (home / "workers").mkdir(parents=True)
        (home / "workers" / "transactions-0.json").write_text(
            json.dumps(
                {
                    "name": "transactions",
                    "instance": 0,
                    "pid": pid,
                    "create_time": process.create_time(pid),
                    "url": "http://127.0.0.1:6066",
                    "log": str(home / "logs" / "worker-transactions-0.log"),
                }
            )
        )
        token = auth.api_token(get_settings())
        result = CliRunner().invoke(cli.app, ["workers", "status"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    path = (home / auth.FILE_NAME).resolve()
    curl = f'curl -H "Authorization: Bearer $(cat {path})" http://127.0.0.1:6066/kpis/current'
    assert curl in result.output.replace("\n", "")
    assert token not in result.output
