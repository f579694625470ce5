"""Where every table lives under the lake root: the one place a table path is spelled.

::

    <lake>/bronze/<table>       what came off Kafka, validated, one row per record
    <lake>/silver/<table>       cleaned orders: de-duplicated, refunds netted, in EUR
    <lake>/gold/<table>         the models: RFM, CLV, churn scores, cohorts, revenue
    <lake>/models/churn/<ver>/  saved churn models with their metrics.json
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ecap.settings import get_settings

# bronze
TRANSACTIONS = "transactions"
TRANSACTION_ITEMS = "transaction_items"
USER_EVENTS = "user_events"
PRODUCT_UPDATES = "product_updates"
CUSTOMERS = "customers"
FRAUD_ALERTS = "fraud_alerts"
REJECTED = "_rejected"
# silver
ORDERS = "orders"
ORDER_LINES = "order_lines"
# gold
RFM = "rfm"
CLV = "clv"
CHURN_SCORES = "churn_scores"
COHORT_RETENTION = "cohort_retention"
DAILY_REVENUE = "daily_revenue"

LAYERS = ("bronze", "silver", "gold")


@dataclass(frozen=True)
class Lake:
    """A lake root (a local folder or an object-store URI) and the paths of its tables."""

    root: str

    @classmethod
    def at(cls, root: str | os.PathLike[str] | None = None) -> Lake:
        """The lake at ``root``, or at ``ECAP_LAKE_URI`` (default ``<ECAP_HOME>/lake``)."""
        chosen = str(root) if root is not None else get_settings().lake_root
        chosen = chosen.rstrip("/")
        return cls(chosen if "://" in chosen else os.path.abspath(chosen))

    def table(self, layer: str, name: str) -> str:
        return f"{self.root}/{layer}/{name}"

    def bronze(self, name: str) -> str:
        return self.table("bronze", name)

    def silver(self, name: str) -> str:
        return self.table("silver", name)

    def gold(self, name: str) -> str:
        return self.table("gold", name)

    def models(self, name: str) -> str:
        return f"{self.root}/models/{name}"
