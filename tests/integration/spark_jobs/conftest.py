"""One local SparkSession for every batch test; a fresh broker and a shop for ingest tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import Result
from confluent_kafka import Producer
from deltalake import DeltaTable, QueryBuilder
from pyspark.sql import SparkSession
from typer.testing import CliRunner

from ecap import topics
from ecap.embedded import broker
from ecap.embedded.process import free_port
from ecap.event_time import to_ms
from ecap.events import (
    Customer,
    Event,
    FraudAlert,
    LineItem,
    Location,
    ProductUpdate,
    Transaction,
    UserEvent,
    encode,
)
from ecap.generator import history
from ecap.kafka import admin
from spark_jobs.cli import app
from spark_jobs.lake import Lake
from spark_jobs.session import get_spark

PARIS = Location(city="Paris", country="FR", region="EMEA", lat=48.8566, lon=2.3522)


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    session = get_spark("ecap-tests", "local[2]", driver_memory="2g")
    yield session
    session.stop()


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake.at(tmp_path / "lake")


@pytest.fixture
def catalog_bootstrap(tmp_path: Path) -> Iterator[str]:
    """A fresh embedded broker with the topic catalog, for one test.

    Ingest reads the catalog's fixed topic names, so it cannot share a broker with tests
    that write to those topics. Tansu starts in milliseconds.
    """
    home = tmp_path / "kafka"
    home.mkdir()
    entry = broker.start("127.0.0.1", free_port(), home)
    try:
        admin.create_topics(admin.admin_client(str(entry["address"])))
        yield str(entry["address"])
    finally:
        broker.stop(entry)


class Shop:
    """Sends hand-made events to the catalog topics, keyed as the contracts say."""

    def __init__(self, bootstrap: str) -> None:
        self.producer = Producer(
            {"bootstrap.servers": bootstrap, "linger.ms": 20, "log.connection.close": False}
        )

    def send(self, topic: str, key: str, value: bytes, timestamp_ms: int = 0) -> None:
        """Produce one record; ``timestamp_ms`` 0 lets the producer stamp it now."""
        self.producer.produce(topic, value=value, key=key.encode(), timestamp=timestamp_ms)

    def event(self, topic: str, key: str, event: Event) -> None:
        """Produce an event stamped with its event time, as a backfill must be (the ingest
        refuses an event time a week before its record's timestamp, ``ecap.event_time``)."""
        self.send(topic, key, encode(event), to_ms(event.model_dump()["event_time"]))

    def flush(self) -> None:
        assert self.producer.flush(10) == 0

    def close(self) -> None:
        """Disconnect: the broker stops at once only when no client is connected."""
        self.producer.close()

    def purchase(
        self,
        transaction_id: str,
        user_id: str,
        at: str,
        items: list[tuple[str, str, int, float]],
        *,
        currency: str = "EUR",
        amount: float | None = None,
    ) -> None:
        """A purchase of ``items`` (product, category, quantity, unit price)."""
        lines = [
            LineItem(product_id=p, category=c, quantity=q, unit_price=u) for p, c, q, u in items
        ]
        total = round(sum(q * u for _, _, q, u in items), 2) if amount is None else amount
        self.event(
            topics.TRANSACTIONS,
            user_id,
            self._transaction(transaction_id, user_id, at, total, currency, lines, None),
        )

    def refund(
        self,
        transaction_id: str,
        user_id: str,
        at: str,
        of: str,
        amount: float,
        *,
        currency: str = "EUR",
        product: tuple[str, str] = ("p1", "books"),
    ) -> None:
        """A refund of ``amount`` against purchase ``of``."""
        line = LineItem(product_id=product[0], category=product[1], quantity=1, unit_price=amount)
        self.event(
            topics.TRANSACTIONS,
            user_id,
            self._transaction(transaction_id, user_id, at, amount, currency, [line], of),
        )

    @staticmethod
    def _transaction(
        transaction_id: str,
        user_id: str,
        at: str,
        amount: float,
        currency: str,
        items: list[LineItem],
        refund_of: str | None,
    ) -> Transaction:
        return Transaction(
            transaction_id=transaction_id,
            event_time=datetime.fromisoformat(at),
            user_id=user_id,
            merchant_id="m1",
            type="refund" if refund_of else "purchase",
            original_transaction_id=refund_of,
            amount=amount,
            currency=currency,
            items=items,
            payment_method="credit_card",
            payment_instrument_id="pi-1",
            device_id="d-1",
            ip_address="10.0.0.1",
            channel="web",
            location=PARIS,
        )

    def product(self, product_id: str, at: str, price: float, cost: float, currency: str) -> None:
        self.event(
            topics.PRODUCT_UPDATES,
            product_id,
            ProductUpdate(
                product_id=product_id,
                event_time=datetime.fromisoformat(at),
                change="price_changed",
                name=f"Product {product_id}",
                category="books",
                price=price,
                cost=cost,
                currency=currency,
                stock=10,
            ),
        )

    def customer(self, customer_id: str, at: str, segment: str = "new") -> None:
        self.event(
            topics.CUSTOMERS,
            customer_id,
            Customer(
                customer_id=customer_id,
                event_time=datetime.fromisoformat(at),
                signup_time=datetime.fromisoformat(at),
                segment=segment,
                home=PARIS,
                currency="EUR",
                email_domain="gmail.com",
                marketing_opt_in=True,
            ),
        )

    def page_view(self, event_id: str, session_id: str, at: str) -> None:
        self.event(
            topics.USER_EVENTS,
            session_id,
            UserEvent(
                event_id=event_id,
                event_type="product_view",
                event_time=datetime.fromisoformat(at),
                session_id=session_id,
                device_id="d-1",
                channel="app",
                location=PARIS,
                page="/p/p1",
                product_id="p1",
                category="books",
            ),
        )

    def alert(self, alert_id: str, transaction_id: str, at: str) -> None:
        self.event(
            topics.FRAUD_ALERTS,
            "u1",
            FraudAlert(
                alert_id=alert_id,
                transaction_id=transaction_id,
                user_id="u1",
                merchant_id="m1",
                amount=99.0,
                currency="EUR",
                score=0.91,
                priority="HIGH",
                reasons=[
                    {"code": "velocity", "description": "5 orders in 1 min", "contribution": 0.7},
                    {"code": "new_device", "description": "first seen", "contribution": 0.3},
                ],
                ruleset_version=3,
                model_version="river-1",
                event_time=datetime.fromisoformat(at),
                detection_time=datetime.fromisoformat(at),
            ),
        )


@pytest.fixture
def shop(catalog_bootstrap: str) -> Iterator[Shop]:
    opened = Shop(catalog_bootstrap)
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def open_shop() -> type[Shop]:
    """The :class:`Shop` class, for fixtures wider than one test that start their broker."""
    return Shop


ReadBack = Callable[[str], list[dict[str, Any]]]


def _deltalake_rows(path: str) -> list[dict[str, Any]]:
    reader = QueryBuilder().register("t", DeltaTable(path)).execute("SELECT * FROM t")
    rows: list[dict[str, Any]] = pa.table(reader.read_all()).to_pylist()
    return rows


@pytest.fixture
def read_back() -> ReadBack:
    """The rows of a Delta table as deltalake itself reads them (its DataFusion engine).

    Not ``DeltaTable.to_pyarrow_table()``: it sometimes aborts the interpreter at exit
    (delta-rs issue 2184), which would fail a run whose tests all passed.
    """
    return _deltalake_rows


# --- a two-year history through the whole chain, shared by the chain, CLV and churn tests ---

HISTORY_END = datetime(2026, 11, 27, 8, tzinfo=UTC)
WEEKLY_START = date(2026, 6, 1)


def _hand_customers(schema: pa.Schema) -> pa.Table:
    """Two customers added to the generated history, with known costs: "h-weekly" buys
    40 EUR of goods costing 25 every week from June 1 to November 23 (26 orders);
    "h-gone" bought 30 EUR four times in January 2025 and never came back."""
    rows: list[dict[str, Any]] = [
        {
            "order_id": f"hw-{k}",
            "customer_id": "h-weekly",
            "order_time": datetime.combine(WEEKLY_START, datetime.min.time(), UTC)
            + timedelta(days=7 * k, hours=10),
            "amount": 40.0,
            "currency": "EUR",
            "type": "purchase",
            "cost": 25.0,
        }
        for k in range(26)
    ]
    rows += [
        {
            "order_id": f"hg-{k}",
            "customer_id": "h-gone",
            "order_time": datetime(2025, 1, 1 + 10 * k, 10, tzinfo=UTC),
            "amount": 30.0,
            "currency": "EUR",
            "type": "purchase",
            "cost": None,
        }
        for k in range(4)
    ]
    return pa.Table.from_pylist(rows, schema=schema)


@dataclass(frozen=True)
class Chained:
    """``all --orders`` on a generated history: the lake, the file and what the CLI said."""

    lake: Lake
    orders: Path
    result: Result


@pytest.fixture(scope="session")
def chained(tmp_path_factory: pytest.TempPathFactory) -> Chained:
    """The chain run once, from the command line, on 20,000 generated customers over two
    years (seed 11) plus the two hand-made customers of :func:`_hand_customers`."""
    folder = tmp_path_factory.mktemp("chained")
    generated = history.to_table(
        history.generate(history.HistoryConfig(20_000, 730, seed=11, end=HISTORY_END))
    )
    generated = generated.append_column("cost", pa.nulls(len(generated), pa.float64()))
    path = folder / "orders.parquet"
    pq.write_table(pa.concat_tables([generated, _hand_customers(generated.schema)]), path)
    the_lake = Lake.at(folder / "lake")
    result = CliRunner().invoke(app, ["all", "--orders", str(path), "--lake", the_lake.root])
    return Chained(the_lake, path, result)
