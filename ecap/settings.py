"""The one settings class. Every ``ECAP_*`` variable is declared here, and nowhere else.

Values come from the environment first, then from a ``.env`` file in the working folder.
``docs/operations.md`` documents each field; a test keeps the two in step.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """ECAP configuration.

    An address left unset (``kafka_bootstrap``, ``postgres_dsn``, ``redis_url``) means
    "use the embedded server that ``ecap up`` started"; its address is then read from the
    stack file under ``home``.
    """

    model_config = SettingsConfigDict(
        env_prefix="ECAP_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    home: Path = Field(
        Path(".ecap"),
        description="Folder holding the embedded servers' data, logs and the stack file.",
    )
    kafka_bootstrap: str | None = Field(
        None, description="External Kafka bootstrap servers, e.g. 'kafka:9092'."
    )
    postgres_dsn: str | None = Field(
        None, description="External PostgreSQL DSN, e.g. 'postgresql://ecap@db:5432/ecap'."
    )
    redis_url: str | None = Field(
        None, description="External Redis URL, e.g. 'redis://cache:6379/0'."
    )
    embedded_kafka_host: str = Field(
        "127.0.0.1", description="Interface the embedded broker listens on and advertises."
    )
    embedded_kafka_port: int = Field(
        19092, ge=1, le=65535, description="Port of the embedded broker."
    )
    topic_replication: int = Field(
        1, ge=1, description="Replication factor used by 'ecap topics create'."
    )
    web_host: str = Field(
        "127.0.0.1", description="Interface the workers' live web views listen on."
    )
    web_base_port: int = Field(
        6066, ge=1, le=65535, description="First web port of the workers (see docs/operations.md)."
    )
    api_token: SecretStr | None = Field(
        None,
        description="Bearer token of the workers' web views; defaults to '<home>/api-token'.",
    )
    rules_signing_key: SecretStr | None = Field(
        None,
        description="HMAC key fraud rule sets are signed with (at least 32 characters); "
        "defaults to '<home>/rules-signing-key'.",
    )
    spark_master: str = Field("local[*]", description="Spark master URL for the batch jobs.")
    lake_uri: str | None = Field(
        None, description="Root of the Delta Lake tables; defaults to '<home>/lake'."
    )
    log_level: str = Field("INFO", description="Log level of ECAP processes.")
    event_time_max_ahead: timedelta = Field(
        timedelta(days=1),
        gt=timedelta(0),
        description="How far an event time may lie after its record's timestamp (or the wall "
        "clock); later events are dead-lettered (see ecap/event_time.py).",
    )
    event_time_max_behind: timedelta = Field(
        timedelta(days=7),
        gt=timedelta(0),
        description="How far an event time may lie before its record's timestamp; older "
        "events are dead-lettered (a backfill stamps records with their event times).",
    )

    api_host: str = Field(
        "127.0.0.1", description="Interface the REST API listens on ('ecap api')."
    )
    api_port: int = Field(8000, ge=1, le=65535, description="Port of the REST API.")
    api_workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes of the API.")
    api_docs_enabled: bool = Field(
        True, description="Serve the OpenAPI document and its docs page (switch off in production)."
    )
    api_jwt_secret: SecretStr | None = Field(
        None,
        description="HMAC key the API signs its access tokens with (at least 32 characters); "
        "required with an external PostgreSQL, else defaults to '<home>/api-jwt-key'.",
    )
    api_access_token_ttl: timedelta = Field(
        timedelta(minutes=15),
        gt=timedelta(0),
        le=timedelta(hours=12),
        description="Lifetime of an API access token (JWT).",
    )
    api_refresh_token_ttl: timedelta = Field(
        timedelta(days=7), gt=timedelta(0), description="Lifetime of an API refresh token."
    )
    api_rate_limits: dict[str, str] = Field(
        {"analyst": "600/minute", "investigator": "600/minute", "admin": "600/minute"},
        description="Requests each principal (user or API key's user) may make, by role, "
        "in the 'limits' notation ('600/minute', '20/second'); kept in Redis, so every API "
        "process counts together. A dashboard polling every 5 s makes ~120 a minute.",
    )
    reporting_timezone: str = Field(
        "UTC", description="IANA time zone that defines 'today' and every day bucket."
    )

    @field_validator("reporting_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as 'UTC' or 'Europe/Berlin'"
            ) from exc
        return value

    @property
    def lake_root(self) -> str:
        return self.lake_uri or str(self.home / "lake")

    @property
    def embedded_database(self) -> bool:
        """True on the embedded default (no ``ECAP_POSTGRES_DSN``): the API may then keep
        its signing secret in a file under ``home``; a deployment must configure it."""
        return not self.postgres_dsn


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
