"""Rate limits per principal and per role, counted in Redis (the ``limits`` library, a
moving window), so every API process and replica counts together.

Each role has its limit (``ECAP_API_RATE_LIMITS``, sized so the dashboard, polling every
few seconds for each signed-in user, never reaches it); each user counts on its own. Over
the limit the answer is 429 with ``Retry-After``. Without Redis (none configured, none
embedded) the counts are kept in the process, and the log says so once.
"""

from __future__ import annotations

import logging
import math
import time

from fastapi import Request
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from ecap import services
from ecap.credentials import Role
from ecap.settings import Settings
from web.api.problems import Problem

log = logging.getLogger(__name__)

KEY_PREFIX = "ecap-api"
"""Prefix of the counters' keys in Redis."""


def _storage(settings: Settings) -> Storage:
    try:
        address = services.redis(settings).address
    except services.ServiceUnavailable:
        log.warning("no Redis: rate limits are counted per API process")
        return MemoryStorage()
    scheme, _, rest = address.partition("://")
    uri = f"async+redis+unix://{rest}" if scheme == "unix" else f"async+{scheme}://{rest}"
    return RedisStorage(uri, implementation="redispy", key_prefix=KEY_PREFIX)


class RateLimits:
    def __init__(self, settings: Settings) -> None:
        self.items: dict[Role, RateLimitItem] = {
            role: parse(settings.api_rate_limits.get(role.value, "600/minute")) for role in Role
        }
        self.limiter = MovingWindowRateLimiter(_storage(settings))

    async def check(self, role: Role, principal: str) -> None:
        """Count one request of ``principal``; a :class:`Problem` (429) over its limit."""
        item = self.items[role]
        if await self.limiter.hit(item, role.value, principal):
            return
        stats = await self.limiter.get_window_stats(item, role.value, principal)
        wait = max(1, math.ceil(stats.reset_time - time.time()))
        raise Problem(
            429,
            f"over the rate limit of the role {role.value} ({item})",
            f"wait {wait} s; a client polling more often than every few seconds should "
            "slow down, or ask an admin for a higher ECAP_API_RATE_LIMITS",
            headers={"Retry-After": str(wait)},
        )


def rate_limits(request: Request) -> RateLimits:
    limits: RateLimits = request.app.state.rate_limits
    return limits
