"""Currency normalisation: every silver and gold amount is in euros, at fixed rates.

The rates are the fixed, illustrative table the data generator prices in
(``ecap.generator.geography.FX_PER_USD``, units per US dollar), so converting generated
data back to one currency is exact up to rounding to the cent. One euro buys
``FX_PER_USD[c] / FX_PER_USD["EUR"]`` units of ``c``; an amount in ``c`` is worth
``amount * EUR_PER_UNIT[c]`` euros. Rates do not vary over time: the lake answers "how much
did we sell", not "what was it worth on the day".
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from ecap.generator.geography import FX_PER_USD

REPORTING_CURRENCY = "EUR"

EUR_PER_UNIT: dict[str, float] = {
    code: FX_PER_USD[REPORTING_CURRENCY] / units for code, units in sorted(FX_PER_USD.items())
}
"""Euros per one unit of each known currency."""


def eur_rate(currency: Column) -> Column:
    """Euros per unit of ``currency`` as a column expression; null for an unknown code."""
    mapping = F.create_map(*[F.lit(x) for pair in sorted(EUR_PER_UNIT.items()) for x in pair])
    return mapping[currency]
