"""The case lifecycle: which moves are allowed, and that only a verdict closes."""

from __future__ import annotations

import pytest

from ecap.events import Verdict
from ecap.fraud.lifecycle import Resolution, Status, TransitionRefused, close, move


@pytest.mark.parametrize(
    ("current", "target", "assignee"),
    [
        (Status.NEW, Status.ASSIGNED, "ivy"),
        (Status.ASSIGNED, Status.INVESTIGATING, "ivy"),
        (Status.ASSIGNED, Status.ASSIGNED, "ian"),
        (Status.ASSIGNED, Status.NEW, None),
        (Status.INVESTIGATING, Status.ASSIGNED, "ian"),
        (Status.CLOSED, Status.NEW, None),
        (Status.CLOSED, Status.ASSIGNED, "ivy"),
    ],
)
def test_an_allowed_move_gives_the_target(
    current: Status, target: Status, assignee: str | None
) -> None:
    assert move(current, target, assignee) is target


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (Status.NEW, Status.INVESTIGATING),
        (Status.INVESTIGATING, Status.NEW),
        (Status.CLOSED, Status.INVESTIGATING),
    ],
)
def test_a_skipped_step_is_refused(current: Status, target: Status) -> None:
    with pytest.raises(TransitionRefused, match="cannot become"):
        move(current, target, "ivy")


@pytest.mark.parametrize("current", list(Status))
def test_only_a_verdict_closes(current: Status) -> None:
    with pytest.raises(TransitionRefused, match="recording a verdict"):
        move(current, Status.CLOSED, "ivy")


def test_assigned_needs_an_assignee() -> None:
    with pytest.raises(TransitionRefused, match="only with an assignee"):
        move(Status.CLOSED, Status.ASSIGNED, None)


@pytest.mark.parametrize("current", [Status.NEW, Status.ASSIGNED, Status.INVESTIGATING])
def test_a_verdict_closes_any_open_case(current: Status) -> None:
    assert close(current) is Status.CLOSED


def test_a_closed_case_must_be_reopened_before_another_verdict() -> None:
    with pytest.raises(TransitionRefused, match="reopen"):
        close(Status.CLOSED)


def test_a_resolution_maps_to_the_verdict_the_detectors_learn() -> None:
    assert [r.verdict for r in Resolution] == [Verdict.CONFIRMED, Verdict.FALSE_POSITIVE]
