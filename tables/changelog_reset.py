"""Tables that survive a reset changelog: RocksDB is kept and the log written again from it.

The bug this prevents. Faust keeps, in each RocksDB partition, the offset of the last
changelog record it holds, and a recovery reads the changelog on from there. When the log
is reset under the worker (an embedded broker restarted: it keeps its log in memory; a
changelog topic deleted and created again), that offset points past the end of the new
log: Faust's recovery stops the worker with ``ConsistencyError`` ("persisted offset ...
higher than the last offset in that topic"), and the only way out was to delete the
worker's RocksDB folder, all of its per-user state.

What :class:`GuardedTable` does instead, at every assignment, before Faust's recovery
reads the persisted offsets (``TableManager.on_rebalance`` calls each table's
``on_rebalance`` first):

1. for the partitions it now holds (of its changelog, or of its source topic when the
   changelog is missing), find each changelog partition's true end offset
   (``ecap.kafka.offsets``; on the embedded broker too);
2. a missing changelog topic is created again (:func:`declare_again`), with the
   table's partition count (the workers never let the broker create a topic with its
   default count: ``ecap.patches.aiokafka_no_auto_create``);
3. a partition whose persisted offset is at or past that end, or whose changelog is new
   while RocksDB holds keys, is *reset*: every key RocksDB keeps is sent to the changelog
   again and the persisted offset moved onto the new log (``tables.store``), so the state
   stays as it was, and a later restart, or another worker taking the partition over,
   recovers that same state from the changelog;
4. the repair is told (``tables.log_resets``).

Writes made while the broker was away reached RocksDB (the changelog records failed), so
what is re-seeded is the latest state. One case is not repaired: a worker given a
partition it held long ago, whose changelog was meanwhile reset and re-seeded by another
worker, reads its old RocksDB copy on from the new log's offsets. Keep a partition's
RocksDB folder with the worker that owns it (a StatefulSet volume), or delete the
stale copy.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from faust.types import TP, AppT, TopicT
from mode.utils.times import want_seconds

from ecap.kafka.declare import create_topic
from ecap.kafka.offsets import partition_ranges
from tables import store
from tables.log_resets import LogResets


class GuardedTable(faust.Table):
    """A Faust table co-partitioned with ``source`` whose changelog is checked for a reset
    at every assignment (see the module docstring)."""

    def __init__(self, app: faust.App, *, source: str, resets: LogResets, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.source = source
        self.resets = resets

    async def on_rebalance(
        self,
        assigned: set[TP],
        revoked: set[TP],
        newly_assigned: set[TP],
        generation_id: int = 0,
    ) -> None:
        await super().on_rebalance(assigned, revoked, newly_assigned, generation_id)
        await repair(self, assigned)


def define(
    app: faust.App, name: str, *, source: str, resets: LogResets, **options: Any
) -> GuardedTable:
    """Declare a :class:`GuardedTable` on ``app``, as ``app.Table`` declares Faust's own."""
    table = GuardedTable(
        app, name=name, source=source, resets=resets, beacon=app.tables.beacon, **options
    )
    app.tables.add(table)
    return table


def _bootstrap(app: AppT) -> str:
    return ",".join(f"{url.host}:{url.port}" for url in app.conf.broker)


async def declare_again(app: AppT, topic: TopicT) -> bool:
    """Create ``topic`` as Faust declares it (partitions, cleanup policy, retention, its
    config), through ``ecap.kafka.declare``: Faust's own declaration skips a topic its
    cached metadata still lists. True if created, False if it existed."""
    config = {key: str(value) for key, value in (topic.config or {}).items()}
    policy = [
        name for name, on in (("compact", topic.compacting), ("delete", topic.deleting)) if on
    ]
    if policy:
        config["cleanup.policy"] = ",".join(policy)
    if topic.retention:
        config["retention.ms"] = str(int(want_seconds(topic.retention) * 1000))
    partitions = topic.partitions or app.conf.topic_partitions
    replicas = topic.replicas or app.conf.topic_replication_factor or 1
    created = False
    for name in topic.topics:
        made = await asyncio.to_thread(
            create_topic, _bootstrap(app), name, partitions, replicas, config
        )
        created = created or made
    return created


async def repair(table: GuardedTable, assigned: set[TP]) -> None:
    """Steps 1-4 of the module docstring for the partitions of ``assigned``."""
    changelog = table.changelog_topic.get_topic_name()
    held = sorted({tp.partition for tp in assigned if tp.topic in (changelog, table.source)})
    if not held:
        return
    ranges = await asyncio.to_thread(partition_ranges, _bootstrap(table.app), [changelog])
    missing = not ranges
    if missing:
        await declare_again(table.app, table.changelog_topic)
    ends = {partition: end for (_, partition), (_, end) in ranges.items()}
    repaired: dict[int, tuple[int | None, int]] = {}
    sent = 0
    for partition in held:
        persisted = store.persisted_offset(table, partition)
        end = ends.get(partition, 0)
        if persisted is not None:
            reset = persisted >= end
        else:
            reset = end == 0 and next(store.kept_items(table, partition), None) is not None
        if reset:
            sent += await store.reseed_changelog(table, partition, end)
            repaired[partition] = (persisted, end)
    what = "declared again and " if missing else ""
    table.resets.record(
        changelog,
        repaired,
        f"changelog {what}re-seeded from RocksDB ({sent} keys); the tables' state is kept",
    )
