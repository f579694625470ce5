"""``faust_fastpath.deliver``: inline when the callback does not wait, interruptible when it does.

The consumer here is a real mode ``Service`` (``wait_first`` is mode's own) with a
``suspend_flow`` event, as Faust's consumer has; the callbacks are plain coroutines.
"""

from __future__ import annotations

import asyncio

import faust
import pytest
from mode import Service

from ecap.patches import faust_delivery as faust_fastpath


class FakeConsumer(Service):
    def __init__(self) -> None:
        super().__init__()
        self.suspend_flow = asyncio.Event()


async def test_a_callback_that_does_not_wait_runs_inline_without_a_task() -> None:
    consumer = FakeConsumer()
    seen: list[asyncio.Task[object] | None] = []

    async def callback() -> None:
        seen.append(asyncio.current_task())

    await faust_fastpath.deliver(consumer, callback())

    assert seen == [asyncio.current_task()]


async def test_a_callback_that_waits_is_finished_with_its_result_delivered() -> None:
    consumer = FakeConsumer()
    queue: asyncio.Queue[int] = asyncio.Queue()
    got: list[int] = []

    async def callback() -> None:
        got.append(await queue.get())
        await asyncio.sleep(0)
        got.append(await queue.get())

    async def feed() -> None:
        await asyncio.sleep(0.01)
        queue.put_nowait(1)
        await asyncio.sleep(0.01)
        queue.put_nowait(2)

    feeder = asyncio.create_task(feed())
    await faust_fastpath.deliver(consumer, callback())
    await feeder

    assert got == [1, 2]


async def test_a_waiting_callback_is_cancelled_when_flow_is_suspended() -> None:
    consumer = FakeConsumer()
    cancelled = asyncio.Event()

    async def callback() -> None:
        try:
            await asyncio.Event().wait()  # never set: a full agent queue, say
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def rebalance() -> None:
        await asyncio.sleep(0.01)
        consumer.suspend_flow.set()

    trigger = asyncio.create_task(rebalance())
    await asyncio.wait_for(faust_fastpath.deliver(consumer, callback()), 2.0)
    await trigger
    await asyncio.wait_for(cancelled.wait(), 1.0)

    assert cancelled.is_set()


async def test_an_error_in_an_inline_callback_reaches_the_fetch_loop() -> None:
    consumer = FakeConsumer()

    async def callback() -> None:
        raise ValueError("bad record")

    with pytest.raises(ValueError, match="bad record"):
        await faust_fastpath.deliver(consumer, callback())


async def test_an_error_after_a_wait_reaches_the_fetch_loop() -> None:
    consumer = FakeConsumer()

    async def callback() -> None:
        await asyncio.sleep(0.001)
        raise ValueError("late failure")

    with pytest.raises(ValueError, match="late failure"):
        await faust_fastpath.deliver(consumer, callback())


def test_install_patches_faust_once_and_uninstall_restores_it() -> None:
    from faust.transport import consumer as faust_consumer

    was_installed = faust_fastpath.is_installed()
    faust_fastpath.uninstall()
    original = faust_consumer.Consumer._drain_messages
    try:
        faust_fastpath.install()
        faust_fastpath.install()
        assert faust_consumer.Consumer._drain_messages is faust_fastpath._drain_messages
        faust_fastpath.uninstall()
        assert faust_consumer.Consumer._drain_messages is original
    finally:
        if was_installed:
            faust_fastpath.install()


def test_install_refuses_a_faust_it_does_not_know(monkeypatch: pytest.MonkeyPatch) -> None:
    was_installed = faust_fastpath.is_installed()
    faust_fastpath.uninstall()
    monkeypatch.setattr(faust, "__version__", "0.99.0")
    try:
        with pytest.raises(RuntimeError, match=r"this is Faust 0\.99\.0"):
            faust_fastpath.install()
        assert not faust_fastpath.is_installed()
    finally:
        monkeypatch.undo()
        if was_installed:
            faust_fastpath.install()
