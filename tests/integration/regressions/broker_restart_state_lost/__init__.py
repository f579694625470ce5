"""The embedded broker was stopped (SIGTERM) and started again, with ``ecap up`` and ``ecap
topics create``: it keeps its log in memory, so every topic came back empty. The
transactions worker then crash-looped on Faust's ``ConsistencyError`` ("persisted offset
... higher than ... highwater (38 > -1)") until its RocksDB folder, all per-user fraud
state, was deleted; the KPI ledgers counted every new record as a duplicate; and the
workers recreated topics with the broker's default partition count before ``ecap topics
create`` could. Now the workers find the reset logs, keep their state, re-seed the logs
from it and say so."""
