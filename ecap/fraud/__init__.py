"""Fraud detection logic: per-user state, features, rules, an online model and the detector.

Everything in this package is pure: no Kafka, Faust or database imports, so it can be
tested, replayed and benchmarked offline. The transactions worker (``agents/``) feeds it
decoded transactions and persists what it returns; see ``docs/fraud.md``.

Modules, in the order a transaction meets them:

``state``        :class:`~ecap.fraud.state.UserState`, all per-user state in one record
``merchant``     :class:`~ecap.fraud.merchant.MerchantStats` and ``merchant_risk``
``features``     ``compute_features`` from a transaction and the state before it
``rules``        rules as data (``RuleSet``), validated, compiled and evaluated
``model``        :class:`~ecap.fraud.model.AnomalyModel`, an online model from river
``detector``     :class:`~ecap.fraud.detector.Detector`: one decision per transaction
``rule_records`` a rule set as a ``fraud-rules`` record: key, signature, limits, ``RuleSetLog``
``quality``      precision, recall, PR-AUC and latency against the generator's labels
"""
