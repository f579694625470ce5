"""The transactions worker's fraud views: ``/fraud/detector/`` (the detectors this worker
holds), ``/users/{user_id}/risk/`` (one user's fraud state, from the worker that owns
the user's partition: routed there with ``@app.table_route``), and the rule set's part of
``/health``'s details (:func:`with_rules`)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import faust
from faust.web import Request, Response, View

from agents.fraud_control import FraudControl
from agents.transactions import TransactionsWorker
from ecap.fraud.state import UserState
from ecap.topics import FRAUD_RULES, TRANSACTIONS
from ecap.workers import WorkerSpec
from tables import user_state
from web.worker_views import Health, page


def fraud_views(app: faust.App, spec: WorkerSpec, worker: TransactionsWorker) -> None:
    @page(app, "/fraud/detector")
    class DetectorView(View):
        async def get(self, request: Request) -> Response:
            try:
                assignment = app.consumer.assignment()
            except Exception:  # the consumer is not started yet
                assignment = set()
            held = sorted(tp.partition for tp in assignment if tp.topic == TRANSACTIONS)
            return self.json(detector_summary(worker, held))

    table: Any = worker.tables.user_state

    @page(app, "/users/{user_id}/risk")
    class UserRisk(View):
        @app.table_route(table=table, match_info="user_id")  # type: ignore[arg-type]
        async def get(self, request: Request, user_id: str) -> Response:
            raw = table.get(user_state.user_key(user_id))
            if raw is None:
                return self.json(
                    {"user_id": user_id, "error": "no fraud state for this user"}, status=404
                )
            return self.json(
                {**risk_summary(user_id, UserState.from_bytes(raw)), "served_by": spec.url}
            )


def with_rules(health: Health, worker: TransactionsWorker) -> Health:
    """``health`` with the rule set's state added to its details (``rules``)."""
    return replace(
        health, details=lambda: {**health.details(), "rules": rules_summary(worker.control)}
    )


def rules_summary(control: FraudControl) -> dict[str, Any]:
    """The rule set in use, where it came from, and the rule sets refused since start."""
    key = control.rules.key
    return {
        "version": control.ruleset.version,
        "source": (
            f"{FRAUD_RULES} offset {control.rules.live_offset}"
            if control.rules.live is not None
            else "shipped defaults"
        ),
        "signing_key": "usable" if key.secret is not None else f"missing: {key.problem}",
        "rejected": {reason.value: n for reason, n in sorted(control.rejected.items())},
        "latest_rejected": [
            {"offset": r.offset, "reason": r.reason.value, "error": r.error}
            for r in control.rejections
        ],
    }


def detector_summary(worker: TransactionsWorker, held: list[int]) -> dict[str, Any]:
    """Rule set, partitions held and processed, and what each detector has learned."""
    return {
        "worker": worker.worker,
        "ruleset_version": worker.ruleset.version,
        "control_caught_up": worker.control.caught_up.is_set(),
        "held_partitions": held,
        "processed": {str(p): offset for p, offset in sorted(worker.processed.items())},
        "partitions": {
            str(p): {
                "model_version": part.detector.model.version,
                "model_updates": part.detector.model.learned,
                "verdicts_learned": sum(part.detector.model.verdicts),
                "rule_precision": {
                    rule: round(part.detector.rule_precision.precision(rule), 3)
                    for rule in sorted(part.detector.rule_precision.counts)
                },
            }
            for p, part in sorted(worker.partitions.items())
        },
    }


def risk_summary(user_id: str, state: UserState) -> dict[str, Any]:
    """What an investigator reads first about a user's fraud state."""
    now = state.last_time
    last_hour = state.window(now, 3600.0) if now is not None else (0, 0.0)
    last_day = state.day(now) if now is not None else (0, 0.0)
    instruments, devices, ips = state.distinct_last_hour(now) if now is not None else (0, 0, 0)
    return {
        "user_id": user_id,
        "transactions": state.count,
        "first_time": state.first_time,
        "last_time": state.last_time,
        "last_hour": {"purchases": last_hour[0], "amount": round(last_hour[1], 2)},
        "last_day": {"purchases": last_day[0], "amount": round(last_day[1], 2)},
        "distinct_last_hour": {"instruments": instruments, "devices": devices, "ips": ips},
        "mean_amount": state.mean_amount,
        "known": {
            "devices": len(state.devices),
            "instruments": len(state.instruments),
            "ips": len(state.ips),
            "places": len(state.places),
        },
    }
