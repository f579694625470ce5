"""Test doubles more than one unit test module uses."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson


class FakeTopic:
    """An output topic that keeps what was sent and acknowledges it at once."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(self, **kwargs: Any) -> asyncio.Future[None]:
        self.sent.append(kwargs)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    def letters(self) -> list[dict[str, Any]]:
        """What was sent, each value decoded (dead letters, alerts)."""
        return [orjson.loads(sent["value"]) for sent in self.sent]
