"""``ecap.kafka.batches``: a batch is acknowledged only once the loop body is done with it.

The stream is a stand-in with what :func:`batches` uses of Faust's (a channel with a
queue); the events record their ``ack``. The real stream is exercised by the workers'
integration tests.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ecap.kafka.batches import batches


class FakeEvent:
    def __init__(self, n: int) -> None:
        self.n = n
        self.acked = False

    def ack(self) -> bool:
        self.acked = True
        return True


class FakeChannel:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[FakeEvent] = asyncio.Queue()

    def __aiter__(self) -> FakeChannel:
        return self

    async def __anext__(self) -> FakeEvent:  # batches reads the queue, never this
        raise StopAsyncIteration


class FakeStream:
    def __init__(self, events: list[FakeEvent]) -> None:
        self.channel = FakeChannel()
        for event in events:
            self.channel.queue.put_nowait(event)


async def test_a_batch_is_acknowledged_when_the_body_asks_for_the_next_one() -> None:
    events = [FakeEvent(n) for n in range(5)]
    stream: Any = FakeStream(events)
    seen: list[list[bool]] = []
    async for batch in batches(stream, 3, 0.01):
        seen.append([e.acked for e in batch])
        if len(seen) == 2:
            break
    assert seen == [[False] * 3, [False] * 2]
    assert [e.acked for e in events] == [True] * 3 + [False] * 2


async def test_a_body_that_raises_leaves_its_batch_unacknowledged() -> None:
    events = [FakeEvent(n) for n in range(4)]
    stream: Any = FakeStream(events)

    async def body() -> None:
        async for _batch in batches(stream, 4, 0.01):
            raise RuntimeError("the producer failed")

    with pytest.raises(RuntimeError):
        await body()
    assert [e.acked for e in events] == [False] * 4


async def test_a_body_cancelled_mid_batch_leaves_it_unacknowledged() -> None:
    events = [FakeEvent(n) for n in range(2)]
    stream: Any = FakeStream(events)
    started = asyncio.Event()

    async def body() -> None:
        async for _batch in batches(stream, 4, 0.01):
            started.set()
            await asyncio.sleep(10)

    task = asyncio.ensure_future(body())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [e.acked for e in events] == [False, False]
