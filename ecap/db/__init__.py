"""PostgreSQL access for ECAP: connections, versioned migrations, the fraud-case queries.

The schema lives in ``ecap/db/migrations/NNNN_name.sql`` only; ``ecap db migrate``
applies the files in order (see :mod:`ecap.db.migrate`). Every query is parameterised.
"""

from __future__ import annotations

import asyncpg

from ecap import services
from ecap.settings import Settings


class DatabaseUnavailable(RuntimeError):
    """PostgreSQL cannot be reached; the message says where we looked and what to do."""


def dsn(settings: Settings | None = None) -> str:
    """The configured or embedded PostgreSQL DSN (raises ServiceUnavailable without one)."""
    return services.postgres(settings).address


def _unreachable(address: str, exc: BaseException) -> DatabaseUnavailable:
    return DatabaseUnavailable(
        f"PostgreSQL at {address} refused the connection ({exc}); start the embedded stack "
        "with 'ecap up' or point ECAP_POSTGRES_DSN at your server"
    )


async def connect(address: str, timeout: float = 10.0) -> asyncpg.Connection:
    """One connection to ``address``, with a clear error when the server is not there."""
    try:
        return await asyncpg.connect(address, timeout=timeout)
    except (OSError, asyncpg.PostgresConnectionError, TimeoutError) as exc:
        raise _unreachable(address, exc) from exc


async def create_pool(address: str, size: int = 4) -> asyncpg.Pool:
    """A connection pool to ``address``, with the same clear error as :func:`connect`."""
    try:
        pool = await asyncpg.create_pool(address, min_size=1, max_size=size, timeout=10.0)
    except (OSError, asyncpg.PostgresConnectionError, TimeoutError) as exc:
        raise _unreachable(address, exc) from exc
    assert pool is not None
    return pool
