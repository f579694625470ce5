"""``product-updates.dlq`` and ``customers.dlq`` were in the topic catalog, though nothing
wrote them: no stream worker consumes those topics, and the batch ingest keeps their bad
records in ``bronze/_rejected``. Every dead-letter topic of the catalog must have a writer.

Each worker is built as ``ecap worker NAME`` builds it (``ecap.faust_app``), in a child
process (building installs process-wide patches), with Faust's ``Topic`` setting pointed
at a subclass that records every topic the worker's agents create: a dead-letter topic a
worker creates is one it sends its rejected records to."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ecap.embedded.process import free_port
from ecap.topics import CATALOG

BUILD_EVERY_WORKER = """
import json

import faust

from ecap import faust_app
from ecap.workers import WORKERS, worker_spec

created: set[str] = set()


class RecordingTopic(faust.Topic):
    def __init__(self, app, *, topics=None, **kwargs):
        created.update(topics or ())
        super().__init__(app, topics=topics, **kwargs)


writes = {}
for name in WORKERS:
    created.clear()
    spec = worker_spec(name, 0, None)
    app = faust_app.create_app(spec, Topic=RecordingTopic)
    faust_app.build(app, spec)
    writes[name] = sorted(topic for topic in created if topic.endswith(".dlq"))
print(json.dumps(writes))
"""


def _dead_letter_topics_by_worker(home: Path, database: str) -> dict[str, list[str]]:
    env = {
        **os.environ,
        "ECAP_HOME": str(home),
        # The apps are built, never started: nothing listens on this port.
        "ECAP_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
        "ECAP_POSTGRES_DSN": database,  # the alerts worker checks its tables when built
    }
    result = subprocess.run(
        [sys.executable, "-c", BUILD_EVERY_WORKER],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    writes: dict[str, list[str]] = json.loads(result.stdout.strip().splitlines()[-1])
    return writes


def test_every_dead_letter_topic_of_the_catalog_has_a_writer(tmp_path: Path, database: str) -> None:
    writes = _dead_letter_topics_by_worker(tmp_path, database)
    written = {topic for topics in writes.values() for topic in topics}
    catalog = {spec.name for spec in CATALOG if spec.name.endswith(".dlq")}
    assert sorted(catalog - written) == [], f"dead-letter topics by worker: {writes}"
    assert sorted(written - catalog) == []
