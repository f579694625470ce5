"""Currency normalisation in Spark: every silver and gold amount is in euros.

The rates are the fixed table of :mod:`ecap.currency`, the one the generator prices in, so
converting generated data back to one currency is exact up to rounding to the cent. An
amount in ``c`` is worth ``amount * EUR_PER_UNIT[c]`` euros. Rates do not vary over time:
the lake answers "how much did we sell", not "what was it worth on the day".

A supported currency without a rate (:data:`ecap.currency.NO_RATE`) gets a null rate:
silver leaves its orders out of the euro tables and reports them by currency (bronze keeps
them, amounts exact), and an order file rejects its rows.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from ecap.currency import EUR_PER_UNIT


def eur_rate(currency: Column) -> Column:
    """Euros per unit of ``currency`` as a column expression; null for an unknown code."""
    mapping = F.create_map(*[F.lit(x) for pair in sorted(EUR_PER_UNIT.items()) for x in pair])
    return mapping[currency]
