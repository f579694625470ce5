"""Hand each consumed record to Faust's agents without four asyncio tasks per record.

The cost. Faust's fetch loop (``faust.transport.consumer.Consumer._drain_messages``)
delivers every record with ``await self.wait_first(callback(message),
self.suspend_flow.wait())``: mode's ``wait_first`` wraps the callback, the suspend-flow
wait and the service's stopped and crashed events in four tasks and runs ``asyncio.wait``
over them, so that a rebalance (which sets ``suspend_flow``) can interrupt a callback that
blocks. Almost no callback blocks: the callback decodes the record and puts it on each
subscribed agent's queue, and it waits only when flow control is paused, the producer
buffer is full or an agent's queue is full. Measured on the transactions worker, the
tasks cost more per record than scoring the transaction does.

The fix. :func:`install` replaces ``_drain_messages`` with the same loop (Faust 0.15.3,
BSD licence) in which :func:`deliver` first runs the callback coroutine up to its first
suspension on the caller's stack. When it finishes there (the common case), that was the
whole delivery and no task was made. When it suspends, the rest of it is wrapped in one
task and handed to ``wait_first`` with ``suspend_flow.wait()`` exactly as before, so a
rebalance still interrupts it; the same happens when ``suspend_flow`` is already set.

Unlike :mod:`ecap.patches.aiokafka_tansu`, this is not about a broker. The composition root
(``ecap.faust_app``) installs it for the transactions worker, whose throughput target needs
it, and for no other worker: the patch is process-wide, and each worker is its own process. An
earlier run of the whole test suite saw a one-against-two user-events workers test differ
with the patch on every worker (docs/fraud-ops.md § Tuning), which could not be reproduced
since, so the other workers stay on Faust's own loop. :func:`install` refuses to patch a
Faust whose loop it does not know (:data:`SUPPORTED`).
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from importlib.metadata import version
from typing import Any, cast

import faust
from faust.transport import consumer as faust_consumer
from faust.transport.consumer import CONSUMER_FETCHING
from mode import Service

from ecap.patches import require

__all__ = ["deliver", "install", "is_installed", "uninstall"]

SUPPORTED = ("0.15.3",)
"""faust-streaming versions whose ``Consumer._drain_messages`` this module reproduces."""
SUPPORTED_MODE = ("0.7.1",)
"""mode-streaming versions whose ``Service._stopped`` and ``wait_first`` the loop uses."""

_original: Callable[..., Awaitable[None]] | None = None


@types.coroutine
def _resume(coro: Coroutine[Any, Any, Any], pending: Any) -> Generator[Any, Any, Any]:
    """Go on running ``coro``, which has yielded ``pending`` to its (absent) task."""
    while True:
        try:
            sent = yield pending
        except BaseException as exc:  # cancellation and thrown errors go into coro
            try:
                pending = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                pending = coro.send(sent)
            except StopIteration as stop:
                return stop.value


async def _finish(coro: Coroutine[Any, Any, Any], pending: Any) -> Any:
    return await _resume(coro, pending)


async def deliver(consumer: Any, coro: Coroutine[Any, Any, Any]) -> None:
    """Run ``coro`` inline; if it has to wait, wait for it or for ``suspend_flow``."""
    if consumer.suspend_flow.is_set():
        await consumer.wait_first(coro, consumer.suspend_flow.wait())
        return
    try:
        pending = coro.send(None)
    except StopIteration:
        return
    task = asyncio.ensure_future(_finish(coro, pending))
    await consumer.wait_first(task, consumer.suspend_flow.wait())


async def _drain_messages(self: Any, fetcher: Any) -> None:  # pragma: no cover - Faust's loop
    # Faust 0.15.3's Consumer._drain_messages, with ``deliver`` in place of
    # ``self.wait_first(callback(message), self.suspend_flow.wait())``.
    callback = self.callback
    getmany = self.getmany
    consumer_should_stop = cast(Service, self)._stopped.is_set
    fetcher_should_stop = cast(Service, fetcher)._stopped.is_set

    get_read_offset = self._read_offset.__getitem__
    set_read_offset = self._read_offset.__setitem__
    flag_consumer_fetching = CONSUMER_FETCHING
    set_flag = self.diag.set_flag
    unset_flag = self.diag.unset_flag
    commit_every = self._commit_every
    acks_enabled_for = self.app.topics.acks_enabled_for

    yield_every = 100
    num_since_yield = 0
    sleep = asyncio.sleep

    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            set_flag(flag_consumer_fetching)
            ait = getmany(timeout=1.0)
            await self.sleep(0)
            if not self.should_stop:
                async for tp, message in ait:
                    num_since_yield += 1
                    if num_since_yield > yield_every:
                        await sleep(0)
                        num_since_yield = 0

                    offset = message.offset
                    r_offset = get_read_offset(tp)
                    if r_offset is None or offset >= r_offset:
                        gap = offset - (r_offset or 0)
                        if gap > 1 and r_offset and acks_enabled_for(message.topic):
                            await self._add_gap(tp, r_offset + 1, offset)
                        if commit_every is not None and self._n_acked >= commit_every:
                            self._n_acked = 0
                            await self.commit()
                        await deliver(self, callback(message))
                        set_read_offset(tp, offset)
                    else:
                        self.log.dev(
                            "DROPPED MESSAGE ROFF %r: k=%r v=%r",
                            offset,
                            message.key,
                            message.value,
                        )
                unset_flag(flag_consumer_fetching)

    except self.consumer_stopped_errors:
        if self.transport.app.should_stop:
            self.log.info("Broker stopped consumer, shutting down...")
            return
        raise
    except asyncio.CancelledError:
        if self.transport.app.should_stop:
            self.log.info("Consumer shutting down for user cancel.")
            return
        raise
    except Exception as exc:
        self.log.exception("Drain messages raised: %r", exc)
        raise
    finally:
        unset_flag(flag_consumer_fetching)


def install() -> None:
    """Patch Faust's fetch loop (idempotent); raises
    :class:`~ecap.patches.UnsupportedVersion` on a Faust it does not know."""
    global _original
    if _original is not None:
        return
    require("Faust", faust.__version__, SUPPORTED, __name__)
    require("mode-streaming", version("mode-streaming"), SUPPORTED_MODE, __name__)
    _original = faust_consumer.Consumer._drain_messages
    faust_consumer.Consumer._drain_messages = _drain_messages  # type: ignore[method-assign]


def is_installed() -> bool:
    return _original is not None


def uninstall() -> None:
    global _original
    if _original is not None:
        faust_consumer.Consumer._drain_messages = _original  # type: ignore[method-assign,assignment]
        _original = None
