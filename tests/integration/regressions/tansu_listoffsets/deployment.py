"""A counting Faust app under test: its topics, its state folder and its worker process.

The worker is ``counter_app.py`` run as a real subprocess; the test talks to it only
through Kafka (events in, counts out), its log and signals.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[3]
PARTITIONS = 2
KEYS = ("alice", "bob", "carol", "dave")
"""Key ``KEYS[i]`` goes to partition ``i % PARTITIONS``: both partitions hold two keys."""

WORKER_READY_TIMEOUT = 60.0
"""Generous: with the app's 3 s session timeout a worker is ready about 4 s after start."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            time.sleep(0.05)
        else:
            return
    raise TimeoutError(f"the embedded broker did not listen on 127.0.0.1:{port} in {timeout} s")


class WorkerDiedError(AssertionError):
    """The counting worker exited while the test was waiting for it."""

    def __init__(self, returncode: int, log: str) -> None:
        super().__init__(f"worker exited with {returncode}; log tail:\n{log[-4000:]}")
        self.returncode = returncode
        self.log = log


class CounterDeployment:
    """One counting app: its topics, its state folder, at most one running worker.

    Events for key ``k`` carry ``seq`` 0, 1, 2, ... in the order sent, so the number of
    events sent for a key is also the count the worker must report for it.
    """

    def __init__(self, bootstrap: str, workdir: Path, *, tansu_compat: bool) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.bootstrap = bootstrap
        self.app_id = f"counter-{suffix}"
        self.events_topic = f"events-{suffix}"
        self.output_topic = f"counts-{suffix}"
        self.datadir = workdir / "state"
        self.log_path = workdir / "worker.log"
        self.tansu_compat = tansu_compat
        self.sent: dict[str, int] = dict.fromkeys(KEYS, 0)
        # One event time for the whole test: every event lands in the same window.
        self.event_time_ms = int(time.time() * 1000)
        self._worker: subprocess.Popen[bytes] | None = None
        self._log_start = 0
        self._latest: dict[str, dict[str, int]] = {}
        self._output = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"reader-{suffix}",
                "enable.auto.commit": False,
            }
        )
        self._create_topics()
        self._output.assign([TopicPartition(self.output_topic, p, 0) for p in range(PARTITIONS)])

    def _create_topics(self) -> None:
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        futures = admin.create_topics(
            [NewTopic(t, PARTITIONS, 1) for t in (self.events_topic, self.output_topic)]
        )
        for future in futures.values():
            future.result(timeout=10)

    # -- the worker -------------------------------------------------------------------

    def start_worker(self) -> None:
        assert self._worker is None, "a worker is already running"
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO_ROOT)]),
            "COUNTER_APP_ID": self.app_id,
            "COUNTER_BOOTSTRAP": self.bootstrap,
            "COUNTER_DATADIR": str(self.datadir),
            "COUNTER_PARTITIONS": str(PARTITIONS),
            "COUNTER_EVENTS_TOPIC": self.events_topic,
            "COUNTER_OUTPUT_TOPIC": self.output_topic,
            "COUNTER_TANSU_COMPAT": "1" if self.tansu_compat else "0",
        }
        with self.log_path.open("ab") as log:
            log.write(f"\n===== worker start at {time.strftime('%X')} =====\n".encode())
            log.flush()
            self._log_start = log.tell()
            self._worker = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "faust",
                    "-A",
                    "counter_app",
                    "worker",
                    "-l",
                    "info",
                    "--without-web",
                ],
                cwd=HERE,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def wait_until_ready(self, timeout: float = WORKER_READY_TIMEOUT) -> None:
        """Wait until the worker has joined the group and recovered its tables."""
        deadline = time.monotonic() + timeout
        while b"[^Worker]: Ready" not in self.log_path.read_bytes()[self._log_start :]:
            self._check_worker_alive()
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"worker not ready in {timeout} s; log tail:\n{self.worker_log()[-4000:]}"
                )
            time.sleep(0.1)

    def stop_worker(self, sig: signal.Signals) -> None:
        """Stop the worker with ``sig`` and wait for it to be gone."""
        worker = self._require_worker()
        worker.send_signal(sig)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
            raise AssertionError(f"worker ignored {sig.name} for 30 s") from None
        finally:
            self._worker = None

    def wipe_state(self) -> None:
        """Delete the worker's local RocksDB state, as on a new machine."""
        assert self._worker is None, "stop the worker first"
        shutil.rmtree(self.datadir)

    def worker_log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def close(self) -> None:
        if self._worker is not None:
            self._worker.kill()
            self._worker.wait()
            self._worker = None
        self._output.close()

    def _require_worker(self) -> subprocess.Popen[bytes]:
        assert self._worker is not None, "no worker is running"
        return self._worker

    def _check_worker_alive(self) -> None:
        returncode = self._require_worker().poll()
        if returncode is not None:
            self._worker = None
            raise WorkerDiedError(returncode, self.worker_log())

    # -- events in, counts out ---------------------------------------------------------

    def send_events(self, per_key: int) -> None:
        """Send ``per_key`` more events for every key, interleaved across keys."""
        producer = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 20})
        for _ in range(per_key):
            for index, key in enumerate(KEYS):
                producer.produce(
                    self.events_topic,
                    key=key.encode(),
                    value=json.dumps({"seq": self.sent[key]}).encode(),
                    partition=index % PARTITIONS,
                    timestamp=self.event_time_ms,
                )
                self.sent[key] += 1
        remaining = producer.flush(10)
        assert remaining == 0, f"{remaining} events were not delivered to the broker"

    def wait_for_counts(self, timeout: float = WORKER_READY_TIMEOUT) -> dict[str, dict[str, int]]:
        """The worker's output for the last event sent for each key, once it has it all.

        Fails if the worker dies or falls silent first.
        """
        deadline = time.monotonic() + timeout
        while not self._has_output_for_last_events():
            self._check_worker_alive()
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no output for the last events {self.sent} in {timeout} s; "
                    f"latest output {self._latest}; worker log tail:\n{self.worker_log()[-4000:]}"
                )
            for message in self._output.consume(num_messages=500, timeout=0.2):
                key, value, error = message.key(), message.value(), message.error()
                assert error is None, f"reading {self.output_topic} failed: {error}"
                assert key is not None, "the worker sent a count without a key"
                assert value is not None, "the worker sent a key without a count"
                self._latest[key.decode()] = json.loads(value)
        return {key: self._latest[key] for key in KEYS}

    def _has_output_for_last_events(self) -> bool:
        return all(self._latest.get(key, {}).get("seq") == self.sent[key] - 1 for key in KEYS)

    def sent_per_partition(self) -> list[int]:
        """Events sent to each partition: also the true end of each changelog partition,
        as every event writes one changelog record per table."""
        sent = [0] * PARTITIONS
        for index, key in enumerate(KEYS):
            sent[index % PARTITIONS] += self.sent[key]
        return sent

    def reported_changelog_ends(self, table: str) -> list[int]:
        """The end of each partition of ``table``'s changelog as the broker reports it
        (librdkafka asks with ListOffsets, the request Tansu gets wrong)."""
        topic = f"{self.app_id}-{table}-changelog"
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"probe-{topic}"})
        try:
            return [
                consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1]
                for p in range(PARTITIONS)
            ]
        finally:
            consumer.close()

    def wait_until_committed(self, timeout: float = 30.0) -> None:
        """Wait until the worker has committed every event sent.

        Faust flushes its producer (so the changelogs) before it commits, so after this
        the changelogs hold every table update and a killed worker replays nothing.
        """
        sent_per_partition = self.sent_per_partition()
        group = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": self.app_id,
                "enable.auto.commit": False,
            }
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                self._check_worker_alive()
                committed = [
                    tp.offset
                    for tp in group.committed(
                        [TopicPartition(self.events_topic, p) for p in range(PARTITIONS)],
                        timeout=5,
                    )
                ]
                if committed == sent_per_partition:
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"worker committed {committed}, expected {sent_per_partition}"
                    )
                time.sleep(0.2)
        finally:
            group.close()


DeploymentFactory = Callable[..., CounterDeployment]
"""What the ``counter_deployment`` fixture gives: ``make(tansu_compat=...)``."""
