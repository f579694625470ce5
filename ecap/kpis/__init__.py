"""Live KPIs as pure logic: windows, money, and the per-batch aggregation of both workers.

Nothing here touches Kafka or Faust. The workers (``agents.sales_kpis``,
``agents.user_events``) turn a batch of records into a :class:`~ecap.kpis.ledger.Delta`
(one per input partition and batch); every worker folds every delta into the same
:class:`~ecap.kpis.ledger.Ledger`, whose query methods answer the web views and build the
records published to ``analytics-results``. See ``docs/api-live.md``.
"""
