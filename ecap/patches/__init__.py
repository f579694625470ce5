"""Every patch of a third-party library's internals, in one place.

ECAP changes the private behaviour of two libraries, and only here:

``aiokafka_tansu``        aiokafka's ``Fetcher``: true end offsets and short fetch waits on
                          the embedded broker (Tansu 0.6.0's ListOffsets and fetch-wait
                          bugs). Switched on by ``ecap.faust_app`` for the embedded broker only.
``aiokafka_no_auto_create`` aiokafka's metadata requests (``aiokafka.client.MetadataRequest``):
                          asked without auto-creation, so a worker never creates a topic
                          that is gone with the broker's default partition count (a
                          restarted broker, a deleted topic). Switched on by
                          ``ecap.faust_app`` for every worker.
``faust_delivery``        Faust's ``Consumer._drain_messages``: records handed to agents
                          without four asyncio tasks each. Switched on by ``ecap.faust_app``
                          for the transactions worker only.
``faust_batch_context``   Faust's current-event context variable (``faust.streams._current_event``),
                          set to one event of a batch so table writes find their partition.

Each module names the library versions it was written against and refuses any other
(:func:`require`), and ``pyproject.toml`` pins those versions exactly, so a fresh install
never meets the guard. Each bug it works around has a regression-test folder named after
it under ``tests/*/regressions/``. The store internals of Faust's RocksDB tables are not
here: ``tables.store`` is the one adapter over them.
"""

from __future__ import annotations

__all__ = ["UnsupportedVersion", "require"]


class UnsupportedVersion(RuntimeError):
    """A patched library is installed in a version its patch was not written for."""


def require(library: str, found: str, supported: tuple[str, ...], patch: str) -> None:
    """Refuse to patch ``library`` (installed: ``found``) unless ``found`` is ``supported``."""
    if found not in supported:
        raise UnsupportedVersion(
            f"{patch} was written for {library} {', '.join(supported)}; this is {library} "
            f"{found}. Reinstall ECAP with its pinned versions (pip install -e .), or check "
            f"the patch against {library} {found} and add that version to its SUPPORTED"
        )
