"""Operating the fraud detector: the live rule set, investigators' cases and verdicts, and
evaluation against the generator's labels. The detection logic itself is ``ecap.fraud``;
the workers are ``agents.transactions`` and ``agents.alerts_sink``.
"""
