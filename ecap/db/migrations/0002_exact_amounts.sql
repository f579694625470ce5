-- Amounts in every currency, unrounded: numeric(12, 2) rounded KWD 12.345 to 12.35 and
-- refused amounts of 10 billion or more (IDR, VND). An unconstrained numeric keeps the
-- decimal the alert carried, whatever its currency's minor units (JPY 0, KWD 3, CLF 4).
-- Existing rows keep their values (numeric(12, 2) widens without change).
ALTER TABLE fraud_cases ALTER COLUMN amount TYPE numeric;
