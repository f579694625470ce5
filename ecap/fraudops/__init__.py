"""Operator tools for the fraud detector (the ``ecap rules|cases|evaluate`` commands):
the live rule set (``live_rules``), investigators' cases and verdicts (``cli``, over
``ecap.db.cases``), and the detection report against the generator's labels
(``detection_report``). The detection logic itself is ``ecap.fraud``; the workers are
``agents.transactions`` and ``agents.alerts_sink``, which import nothing from here.
"""
