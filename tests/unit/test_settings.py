"""Settings come from ECAP_* variables and .env; addresses resolve as documented."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ecap import services
from ecap.settings import Settings


def test_env_variables_override_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECAP_KAFKA_BOOTSTRAP", "kafka-1:9092")
    monkeypatch.setenv("ECAP_EMBEDDED_KAFKA_PORT", "29999")
    settings = Settings()
    assert (settings.kafka_bootstrap, settings.embedded_kafka_port) == ("kafka-1:9092", 29999)


def test_dotenv_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ECAP_REDIS_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("ECAP_REDIS_URL=redis://cache:6379/2\n")
    assert Settings().redis_url == "redis://cache:6379/2"


def test_invalid_port_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECAP_EMBEDDED_KAFKA_PORT", "70000")
    with pytest.raises(ValueError, match="embedded_kafka_port"):
        Settings()


def test_lake_defaults_under_home() -> None:
    assert Settings(home=Path("/srv/ecap"), lake_uri=None).lake_root == "/srv/ecap/lake"


def test_configured_address_wins_over_the_stack(tmp_path: Path) -> None:
    (tmp_path / "stack.json").write_text(json.dumps({"kafka": {"address": "127.0.0.1:19092"}}))
    settings = Settings(home=tmp_path, kafka_bootstrap="broker:9092")
    assert services.kafka(settings) == services.Service("kafka", "broker:9092", embedded=False)


def test_stack_address_is_used_when_nothing_is_configured(tmp_path: Path) -> None:
    (tmp_path / "stack.json").write_text(json.dumps({"redis": {"address": "unix:///x.sock"}}))
    settings = Settings(home=tmp_path, redis_url=None)
    assert services.redis(settings) == services.Service("redis", "unix:///x.sock", embedded=True)
