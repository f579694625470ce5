"""Kafka client helpers shared by ECAP's workers, jobs and tools, through public APIs only.

``admin``      create and describe the catalog's topics
``batches``    a Faust agent's records in batches (and grouped by partition)
``broadcast``  whole topics followed in every worker (the control topics)
``offsets``    the true offset range of each partition, the embedded broker included
``snapshot``   every record a topic holds now, read once

Patches of the Kafka clients' internals are not here: they are in ``ecap.patches``.
"""
