"""Every Prometheus metric ECAP exports, defined here and nowhere else (one registry).

Defined once so that every worker, whatever its agents, reports under the same names and
labels; ``/metrics/`` (``web.worker_views``) serves the process-wide default registry.
Rates (events/s, alerts/s) are ``rate()`` of the ``_total`` counters; the
``ecap_events_per_second`` gauge gives the same for a reader without Prometheus.
"""

from __future__ import annotations

import time
from collections import deque

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

EVENTS = Counter(
    "ecap_events_total",
    "Records taken from an input topic, by outcome: processed, dead_letter, duplicate "
    "(already counted before a restart), skipped (left to another agent), expired "
    "(older than the kept windows).",
    ["topic", "outcome"],
)
EVENTS_PER_SECOND = Gauge(
    "ecap_events_per_second", "Records taken per second over the last seconds.", ["topic"]
)
PROCESSING_LATENCY = Histogram(
    "ecap_processing_latency_seconds",
    "Event time of a record to its effect being visible in the worker (KPIs folded).",
    ["topic"],
    buckets=LATENCY_BUCKETS,
)
CONSUMER_LAG = Gauge(
    "ecap_consumer_lag",
    "Records behind the end of an input partition held.",
    ["topic", "partition"],
)
DEAD_LETTERS = Counter(
    "ecap_dead_letters_total", "Records sent to a dead-letter topic, by stage.", ["topic", "stage"]
)
EVENT_TIME_REJECTED = Counter(
    "ecap_event_time_rejected_total",
    "Records dead-lettered for an implausible event time, by the bound broken: ahead (of "
    "the record timestamp or the wall clock), behind (the record timestamp) or earliest "
    "(before 1990); see ecap/event_time.py.",
    ["topic", "bound"],
)
KPI_WRITE_RETRIES = Counter(
    "ecap_kpi_write_retries_total",
    "KPI batches taken again because writing them failed (the ledger record or the dead "
    "letters were not acknowledged); the batch waits, nothing is dropped.",
    ["family"],
)
ALERTS = Counter("ecap_alerts_total", "Fraud alerts emitted, by priority.", ["priority"])
GC_FROZEN_OBJECTS = Gauge(
    "ecap_gc_frozen_objects",
    "Objects moved out of the garbage collector's sight after a full collection "
    "(ecap.faust_app): steady in a healthy worker; steady growth means reference cycles "
    "that are never freed.",
)
ALERT_RESENDS = Counter(
    "ecap_alert_resends_total",
    "Fraud alerts sent again because the broker did not acknowledge them; the batch's state "
    "and offsets wait until it does, nothing is dropped.",
)
ALERT_LATENCY = Histogram(
    "ecap_fraud_alert_latency_seconds",
    "Event time of a transaction to its alert acknowledged by the broker.",
    buckets=LATENCY_BUCKETS,
)
FRAUD_DECISIONS = Counter(
    "ecap_fraud_decisions_total",
    "Transactions the fraud agent decided on (scored) or skipped as already seen (duplicate).",
    ["outcome"],
)
RULESET_VERSION = Gauge(
    "ecap_fraud_ruleset_version",
    "Version of the rule set in use, per transactions worker (labelled, so that the other "
    "workers, which import this module too, export no misleading 0).",
    ["worker"],
)
RULESETS_REJECTED = Counter(
    "ecap_fraud_rulesets_rejected_total",
    "Records of fraud-rules a transactions worker refused, by reason: unsigned, "
    "bad_signature, no_key (the worker has no usable signing key), stale_version, "
    "over_budget, invalid.",
    ["worker", "reason"],
)
VERDICTS_LEARNED = Counter("ecap_fraud_verdicts_learned_total", "Verdicts learned by a partition.")
LATE_EVENTS = Counter(
    "ecap_kpi_late_events_total",
    "Events counted into a KPI window after it had closed (published again).",
    ["family"],
)
RESULTS_PUBLISHED = Counter(
    "ecap_kpi_results_published_total", "Records sent to analytics-results.", ["family"]
)
KPI_UNCONVERTED = Counter(
    "ecap_kpi_unconverted_total",
    "Transactions the sales KPIs counted without their amount: their currency has no rate "
    "to the reporting currency (in orders or refunds, not in revenue or refund_amount).",
    ["currency"],
)
KPI_DUPLICATE_TRANSACTIONS = Counter(
    "ecap_kpi_duplicate_transactions_total",
    "Transactions the sales KPIs did not count because their transaction_id was counted "
    "already (a copy, perhaps under another user).",
)
LOG_RESETS = Counter(
    "ecap_log_resets_total",
    "Partitions found reset under a worker: their log ends below the offset the worker "
    "had persisted or applied, or the topic was recreated (a restarted embedded broker, a "
    "deleted topic). The worker keeps its state and re-seeds the log (tables/log_resets.py).",
    ["topic"],
)
WATERMARK_DELAY = Gauge(
    "ecap_kpi_watermark_delay_seconds",
    "Wall clock minus the KPI event-time watermark (how far window closing trails).",
    ["family"],
)

API_REQUESTS = Counter(
    "ecap_api_requests_total",
    "REST API requests answered, by route template, method and status code.",
    ["route", "method", "status"],
)
API_LATENCY = Histogram(
    "ecap_api_request_seconds",
    "REST API time from request to response, by route template.",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


class RateMeter:
    """Events per second over a sliding span, fed with counts, read by a gauge."""

    def __init__(self, gauge: Gauge, span_s: float = 5.0) -> None:
        self.gauge = gauge
        self.span_s = span_s
        self._marks: deque[tuple[float, int]] = deque()
        self._total = 0

    def add(self, count: int) -> None:
        self._total += count

    def update(self, now: float | None = None) -> float:
        """Record the running total now and set the gauge to the recent rate."""
        now = time.monotonic() if now is None else now
        self._marks.append((now, self._total))
        while len(self._marks) > 1 and now - self._marks[0][0] > self.span_s:
            self._marks.popleft()
        first_at, first_total = self._marks[0]
        rate = (self._total - first_total) / (now - first_at) if now > first_at else 0.0
        self.gauge.set(rate)
        return rate
