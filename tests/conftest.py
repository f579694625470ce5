"""Settings for every test.

Hypothesis tests check behaviour, not speed (speed is measured by ``bench/``): its default
200 ms deadline per example failed ``tests/unit/test_events.py`` once on a busy 2-core
machine, so there is none.
"""

from hypothesis import settings

settings.register_profile("ecap", deadline=None)
settings.load_profile("ecap")
