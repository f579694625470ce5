"""One transaction id sent again under a second user (so on another ``transactions``
partition) was counted twice in the live sales KPIs. Now each id counts once while its
minute is kept: in the same batch, in a later batch, and when a batch is taken again."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from agents import kpi_batches
from tests.unit.agents.sales_harness import Sales, purchase

ORIGINAL = purchase(transaction_id="tx-7", user_id="u-1", amount=30.0)
COPY = purchase(transaction_id="tx-7", user_id="u-2", amount=30.0)


def _duplicates() -> float:
    return REGISTRY.get_sample_value("ecap_kpi_duplicate_transactions_total") or 0.0


def test_a_copy_under_another_user_in_the_same_batch_counts_once() -> None:
    sales = Sales()
    before = _duplicates()
    sales.take((0, 0, ORIGINAL), (3, 0, COPY))
    values = sales.all()
    assert (values["orders"], values["revenue"], values["unique_customers"]) == (1, 30.0, 1)
    assert _duplicates() == before + 1


def test_a_copy_under_another_user_in_a_later_batch_counts_once() -> None:
    sales = Sales()
    sales.take((0, 0, ORIGINAL))
    sales.take((3, 0, COPY))
    assert (sales.all()["orders"], sales.all()["revenue"]) == (1, 30.0)


def test_the_same_record_sent_twice_by_one_user_counts_once() -> None:
    sales = Sales()
    sales.take((0, 0, ORIGINAL), (0, 1, ORIGINAL))
    assert sales.all()["orders"] == 1


def test_a_batch_taken_again_still_counts_each_transaction_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kpi_batches, "RETRY_FIRST_S", 0.0)
    sales = Sales()
    sales.kpis.failures = 1
    sales.take((0, 0, ORIGINAL), (3, 0, COPY), (1, 0, purchase(transaction_id="tx-8")))
    assert len(sales.kpis.written) == 1
    assert (sales.all()["orders"], sales.all()["revenue"]) == (2, 50.0)


def test_a_partition_counted_again_without_a_bad_record_still_counts_its_transactions() -> None:
    # The record at offset 1 makes the count raise: the batch step counts partition 0
    # again without it, with a fresh delta; tx-7 is no copy of its first pass.
    sales = Sales()
    sales.take((0, 0, ORIGINAL), (0, 1, purchase(transaction_id="tx-8")), lost=1)
    assert [letter["offset"] for letter in sales.dead.letters()] == [1]
    assert (sales.all()["orders"], sales.all()["revenue"]) == (1, 30.0)
