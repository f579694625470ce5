"""The data generator: a stable population, a live event stream with injected fraud, and
an order history for the batch models.

Generation is pure (``population``, ``calendar``, ``journeys``, ``fraud``, ``stream``,
``history``, ``wire``); ``sinks`` and ``runner`` do the I/O; ``cli`` is ``ecap generate``.
"""
