"""Where the broker, PostgreSQL and Redis are: configured addresses or the embedded stack.

An address set in the settings (``ECAP_KAFKA_BOOTSTRAP`` ...) always wins. Otherwise the
address is read from the stack file that ``ecap up`` writes under ``ECAP_HOME``, so every
ECAP process on the machine finds the same embedded servers.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ecap.settings import Settings, get_settings

STACK_FILE = "stack.json"


class ServiceUnavailable(RuntimeError):
    """A service has no address (none configured, no embedded stack), or does not answer."""


@dataclass(frozen=True)
class Service:
    name: str
    address: str
    embedded: bool


def stack_path(settings: Settings) -> Path:
    return settings.home / STACK_FILE


def read_stack(settings: Settings) -> dict[str, Any]:
    """The stack file's content, or an empty dict when no embedded stack was started."""
    path = stack_path(settings)
    if not path.exists():
        return {}
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _resolve(name: str, configured: str | None, env: str, settings: Settings | None) -> Service:
    settings = settings or get_settings()
    if configured:
        return Service(name, configured, embedded=False)
    entry = read_stack(settings).get(name)
    if entry is None:
        raise ServiceUnavailable(
            f"no {name} address: {env} is not set and the embedded stack is not running "
            f"under {settings.home.resolve()}; start it with 'ecap up' or set {env}"
        )
    return Service(name, str(entry["address"]), embedded=True)


def kafka(settings: Settings | None = None) -> Service:
    """The Kafka bootstrap address (``host:port``) and whether it is the embedded broker."""
    s = settings or get_settings()
    return _resolve("kafka", s.kafka_bootstrap, "ECAP_KAFKA_BOOTSTRAP", s)


def reachable_kafka(settings: Settings | None = None, timeout: float = 3.0) -> Service:
    """:func:`kafka`, checked to accept a connection at one of its bootstrap addresses.

    A worker checks before Faust starts: Faust reports a broker it cannot reach with a
    traceback and no word of what to do.
    """
    s = settings or get_settings()
    service = kafka(s)
    for address in service.address.split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
                return service
        except (OSError, ValueError):
            continue
    if service.embedded:
        raise ServiceUnavailable(
            f"the embedded broker recorded in {stack_path(s).resolve()} does not answer at "
            f"{service.address}; start it again with 'ecap up'"
        )
    raise ServiceUnavailable(
        f"the broker at {service.address} (ECAP_KAFKA_BOOTSTRAP) does not accept connections; "
        "start it or point ECAP_KAFKA_BOOTSTRAP at your broker (unset, ECAP uses the embedded "
        "stack that 'ecap up' starts)"
    )


def postgres(settings: Settings | None = None) -> Service:
    """The PostgreSQL DSN (libpq/asyncpg URL form)."""
    s = settings or get_settings()
    return _resolve("postgres", s.postgres_dsn, "ECAP_POSTGRES_DSN", s)


def redis(settings: Settings | None = None) -> Service:
    """The Redis URL (``redis://`` or ``unix://``)."""
    s = settings or get_settings()
    return _resolve("redis", s.redis_url, "ECAP_REDIS_URL", s)
