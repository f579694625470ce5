"""The Faust worker the Tansu ListOffsets regression tests restart.

It counts events per key twice: in a RocksDB table and in a one-hour tumbling-window
table (windows follow the event's timestamp), and after every event publishes both counts
to the output topic, so a test reads the state back exactly. Each test runs it as a real
subprocess::

    python -m faust -A counter_app worker -l info --without-web

configured by ``COUNTER_*`` environment variables, so that every test gets its own app id,
topics and state folder. ``COUNTER_TANSU_COMPAT=1`` switches the workaround on, as the
ECAP app factory does for the embedded broker.
"""

from __future__ import annotations

import os
from datetime import timedelta

import faust

if os.environ.get("COUNTER_TANSU_COMPAT") == "1":
    from ecap.patches import aiokafka_tansu as tansu_compat

    tansu_compat.install()

PARTITIONS = int(os.environ["COUNTER_PARTITIONS"])

app = faust.App(
    os.environ["COUNTER_APP_ID"],
    broker=f"kafka://{os.environ['COUNTER_BOOTSTRAP']}",
    store="rocksdb://",
    datadir=os.environ["COUNTER_DATADIR"],
    topic_partitions=PARTITIONS,
    topic_replication_factor=1,
    table_standby_replicas=0,
    web_enabled=False,
    # Each burst of table updates leaves as one changelog batch per partition (a commit
    # flushes sooner than this), so the last batch holds many records: what Tansu's
    # ListOffsets gets wrong. With a short linger the last batch is sometimes a single
    # record, whose end Tansu happens to report right.
    producer_linger=1.0,
    # Tansu holds each group join for about half the session timeout (measured: 3 s with
    # a 6 s session, 6 s with 12 s), and a restart may need a second join; with 3 s a
    # restarted worker is ready in about 4 s.
    broker_session_timeout=3.0,
    broker_heartbeat_interval=0.5,
    broker_rebalance_timeout=10.0,
    broker_commit_interval=0.5,
)

events = app.topic(os.environ["COUNTER_EVENTS_TOPIC"], key_type=str, value_serializer="json")
output = app.topic(os.environ["COUNTER_OUTPUT_TOPIC"], key_type=str, value_serializer="json")
counts = app.Table("counts", key_type=str, value_type=int, default=int)
window_counts = (
    app.Table("window_counts", key_type=str, value_type=int, default=int)
    .tumbling(timedelta(hours=1), expires=timedelta(days=1))
    .relative_to_stream()
)


@app.agent(events)
async def count(stream: faust.StreamT[dict[str, int]]) -> None:
    """Count each event in both tables, then publish both counts for its key."""
    async for key, event in stream.items():
        counts[key] += 1
        window_counts[key] += 1
        await output.send(
            key=key,
            value={
                "seq": event["seq"],
                "count": counts[key],
                "window_count": window_counts[key].current(),
            },
        )
