"""The embedded stack: a broker, PostgreSQL and Redis that run from wheels, for one laptop.

``ecap up`` starts each server this package knows unless an external address is
configured; ``ecap down`` stops them. See :mod:`ecap.embedded.stack`.
"""
