"""The life of a fraud case as a state machine, pure: statuses in, status out.
``ecap.db.case_work`` applies it under a row lock; docs/api.md draws it.

- new → assigned (assign); assigned → new (unassign), assigned (reassign) or
  investigating; investigating → assigned (reassign);
- new, assigned or investigating → closed, by a verdict (fraud or legitimate);
- closed → new or assigned (reopen; assigned only when the case has an assignee).

A verdict closes a case from any open status (an investigator who already knows need not
walk the steps); only a verdict closes a case, so every closed case has a resolution that
reached ``fraud-feedback``.
"""

from __future__ import annotations

from enum import StrEnum

from ecap.events import Verdict


class Status(StrEnum):
    NEW = "new"
    ASSIGNED = "assigned"
    INVESTIGATING = "investigating"
    CLOSED = "closed"


class Resolution(StrEnum):
    FRAUD = "fraud"
    LEGITIMATE = "legitimate"

    @property
    def verdict(self) -> Verdict:
        """The verdict the detectors learn (the ``fraud-feedback`` contract)."""
        return Verdict.CONFIRMED if self is Resolution.FRAUD else Verdict.FALSE_POSITIVE


OPEN = frozenset({Status.NEW, Status.ASSIGNED, Status.INVESTIGATING})

_MOVES: dict[Status, frozenset[Status]] = {
    Status.NEW: frozenset({Status.ASSIGNED}),
    Status.ASSIGNED: frozenset({Status.ASSIGNED, Status.NEW, Status.INVESTIGATING}),
    Status.INVESTIGATING: frozenset({Status.ASSIGNED}),
    Status.CLOSED: frozenset({Status.NEW, Status.ASSIGNED}),
}
"""Status changes other than closing (which only a verdict does)."""


class TransitionRefused(ValueError):
    """The change asked for is not a move of the lifecycle; the message says what is."""


def move(current: Status, target: Status, assignee: str | None) -> Status:
    """The status after asking ``current`` to become ``target``, ``assignee`` being the
    case's assignee after the change (None for a new case), or :class:`TransitionRefused`."""
    if target is Status.CLOSED:
        raise TransitionRefused("a case is closed by recording a verdict (fraud or legitimate)")
    if target not in _MOVES[current]:
        allowed = ", ".join(sorted(_MOVES[current])) or "nothing"
        raise TransitionRefused(
            f"a {current.value} case cannot become {target.value}; it can become {allowed}"
        )
    if target in (Status.ASSIGNED, Status.INVESTIGATING) and assignee is None:
        raise TransitionRefused(
            f"a case becomes {target.value} only with an assignee; assign it first"
        )
    return target


def close(current: Status) -> Status:
    """The status after a verdict: closed, from any open status."""
    if current not in OPEN:
        raise TransitionRefused(
            "the case is closed already; reopen it (status 'new' or 'assigned') to change "
            "its resolution"
        )
    return Status.CLOSED
