"""Working cases through the API on real PostgreSQL: the queue, next case, the lifecycle,
notes, masking and the audit trail."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg

from ecap.credentials import Role
from ecap.db import case_work

from .conftest import Api, Cases, alert

URL = "/api/v1/cases"


def test_the_queue_is_highest_priority_first_then_oldest(api: Api, cases: Cases) -> None:
    low, high_new, high_old = cases.open(
        alert(1, "LOW"), alert(2, "HIGH"), alert(3, "HIGH"), created_ago={2: timedelta(hours=1)}
    )
    items = api.client.get(URL, headers=api.as_role(Role.INVESTIGATOR)).json()["items"]
    assert [item["case_id"] for item in items] == [high_old, high_new, low]


def test_keyset_pages_cover_the_queue_once(api: Api, cases: Cases) -> None:
    opened = cases.open(*(alert(n, ("LOW", "HIGH", "CRITICAL")[n % 3]) for n in range(11)))
    seen: list[int] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        page = api.client.get(URL, params=params, headers=api.as_role(Role.INVESTIGATOR)).json()
        seen += [item["case_id"] for item in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(opened)  # each case once: no gap, no repeat


def test_a_limit_over_1000_is_422_naming_the_field(api: Api, cases: Cases) -> None:
    response = api.client.get(URL, params={"limit": 1001}, headers=api.as_role(Role.ADMIN))
    assert (response.status_code, response.json()["errors"][0]["field"]) == (422, "query.limit")


def test_the_queue_filters_by_status_priority_assignee_and_age(api: Api, cases: Cases) -> None:
    mine, other, old, low = cases.open(
        alert(1), alert(2), alert(3), alert(4, "LOW"), created_ago={2: timedelta(days=2)}
    )
    headers = api.as_user("ivy")
    api.client.post(f"{URL}/{mine}/assign", json={}, headers=headers)
    api.client.post(f"{URL}/{other}/assign", json={"assignee": "ian"}, headers=headers)

    def ids(**params: str) -> list[int]:
        page = api.client.get(URL, params=params, headers=headers).json()
        return sorted(item["case_id"] for item in page["items"])

    assert ids(status="assigned", assignee="ivy") == [mine]
    assert ids(status="new", priority="HIGH") == [old]
    assert ids(min_age="P1D") == [old]
    assert ids(max_age="PT1H", priority="LOW") == [low]


def test_next_case_assigns_the_top_new_case_to_the_caller(api: Api, cases: Cases) -> None:
    _, top = cases.open(alert(1, "MEDIUM"), alert(2, "CRITICAL"))
    body = api.client.post(f"{URL}/next", headers=api.as_user("ian")).json()
    assert (body["case_id"], body["status"], body["assignee"]) == (top, "assigned", "ian")


def test_next_case_is_204_when_no_case_is_new(api: Api, cases: Cases) -> None:
    assert api.client.post(f"{URL}/next", headers=api.as_user("ian")).status_code == 204


def test_a_locked_case_is_skipped_by_next_case(api: Api, cases: Cases) -> None:
    first, second = cases.open(alert(1), alert(2))

    async def race() -> tuple[int | None, int | None]:
        holder = await asyncpg.connect(api.dsn)
        other = await asyncpg.connect(api.dsn)
        try:
            async with holder.transaction():  # an investigator mid-way through taking `first`
                await holder.execute(
                    "SELECT 1 FROM fraud_cases WHERE case_id = $1 FOR UPDATE", first
                )
                taken = await asyncio.wait_for(
                    case_work.next_case(other, "ian", actor="ian"), timeout=5
                )
            return (taken.case_id if taken else None), None
        finally:
            await holder.close()
            await other.close()

    assert asyncio.run(race())[0] == second


def test_concurrent_next_case_calls_never_share_a_case(api: Api, cases: Cases) -> None:
    cases.open(*(alert(n) for n in range(12)))

    async def take_all() -> list[int]:
        conns = [await asyncpg.connect(api.dsn) for _ in range(8)]
        try:

            async def take(conn: asyncpg.Connection) -> list[int]:
                got = []
                while (case := await case_work.next_case(conn, "ivy", actor="ivy")) is not None:
                    got.append(case.case_id)
                return got

            results = await asyncio.gather(*(take(conn) for conn in conns))
        finally:
            for conn in conns:
                await conn.close()
        return [case_id for got in results for case_id in got]

    taken = asyncio.run(take_all())
    assert len(taken) == len(set(taken)) == 12


def test_the_lifecycle_runs_from_new_to_closed_and_reopens(api: Api, cases: Cases) -> None:
    (case_id,) = cases.open(alert(1))
    headers = api.as_user("ivy")
    steps = [
        api.client.post(f"{URL}/{case_id}/assign", json={}, headers=headers),
        api.client.post(
            f"{URL}/{case_id}/status", json={"status": "investigating"}, headers=headers
        ),
        api.client.post(
            f"{URL}/{case_id}/verdict", json={"resolution": "legitimate"}, headers=headers
        ),
        api.client.post(f"{URL}/{case_id}/status", json={"status": "assigned"}, headers=headers),
    ]
    assert [(r.json()["status"], r.json()["resolution"]) for r in steps] == [
        ("assigned", None),
        ("investigating", None),
        ("closed", "legitimate"),
        ("assigned", None),
    ]


def test_a_move_outside_the_lifecycle_is_409(api: Api, cases: Cases) -> None:
    (case_id,) = cases.open(alert(1))
    response = api.client.post(
        f"{URL}/{case_id}/status", json={"status": "investigating"}, headers=api.as_user("ivy")
    )
    assert (response.status_code, response.json()["detail"]) == (
        409,
        "a new case cannot become investigating; it can become assigned",
    )


def test_a_case_cannot_be_assigned_to_an_analyst(api: Api, cases: Cases) -> None:
    (case_id,) = cases.open(alert(1))
    response = api.client.post(
        f"{URL}/{case_id}/assign", json={"assignee": "ana"}, headers=api.as_user("ivy")
    )
    assert (response.status_code, response.json()["errors"][0]["field"]) == (422, "body.assignee")


def test_an_unknown_case_is_404(api: Api, cases: Cases) -> None:
    assert api.client.get(f"{URL}/999999", headers=api.as_user("ivy")).status_code == 404


def test_one_case_shows_its_transaction_reasons_notes_and_history(api: Api, cases: Cases) -> None:
    (case_id,) = cases.open(alert(7))
    headers = api.as_user("ivy")
    api.client.post(f"{URL}/{case_id}/assign", json={}, headers=headers)
    api.client.post(f"{URL}/{case_id}/notes", json={"body": "called the customer"}, headers=headers)
    body = api.client.get(f"{URL}/{case_id}", headers=headers).json()
    assert (
        body["transaction"]["transaction_id"],
        body["transaction"]["amount"],
        [r["code"] for r in body["reasons"]],
        [n["body"] for n in body["notes"]],
        [(h["from_status"], h["to_status"]) for h in body["history"]],
        body["features"],
    ) == (
        "t-7",
        "120.5",
        ["amount_spike"],
        ["called the customer"],
        [("new", "assigned")],
        {"amount_z": 3.5},
    )


def test_personal_data_in_notes_is_masked_for_admins_not_investigators(
    api: Api, cases: Cases
) -> None:
    (case_id,) = cases.open(alert(1))
    note = "card 4111 1111 1111 1111, jane.doe@example.com from 203.0.113.77"
    api.client.post(f"{URL}/{case_id}/notes", json={"body": note}, headers=api.as_user("ivy"))

    def seen_by(username: str) -> str:
        body = api.client.get(f"{URL}/{case_id}", headers=api.as_user(username)).json()
        return str(body["notes"][0]["body"])

    assert (seen_by("ivy"), seen_by("ada")) == (
        note,
        "card **** **** **** 1111, j***@example.com from 203.0.113.***",
    )


def test_every_case_write_is_audited_with_before_and_after(api: Api, cases: Cases) -> None:
    (case_id,) = cases.open(alert(1))
    headers = api.as_user("ivy")
    api.client.post(f"{URL}/{case_id}/assign", json={"assignee": "ian"}, headers=headers)
    api.client.post(f"{URL}/{case_id}/notes", json={"body": "looked at it"}, headers=headers)
    trail = api.client.get(
        "/api/v1/audit", params={"target": f"case:{case_id}"}, headers=api.as_user("ada")
    ).json()
    assert [(e["actor"], e["action"], e["before"], e["after"]) for e in trail] == [
        (
            "ivy",
            "case.assign",
            {"status": "new", "assignee": None, "resolution": None},
            {"status": "assigned", "assignee": "ian", "resolution": None},
        ),
        ("ivy", "case.note", None, {"note_id": 1, "body": "looked at it"}),
    ]


def test_responses_are_gzipped_when_asked(api: Api, cases: Cases) -> None:
    cases.open(*(alert(n) for n in range(20)))
    response = api.client.get(URL, headers={**api.as_user("ivy"), "Accept-Encoding": "gzip"})
    assert response.headers.get("content-encoding") == "gzip"
