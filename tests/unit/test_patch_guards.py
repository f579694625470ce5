"""Each patch of a library's internals refuses a library version it was not written for,
and ``pyproject.toml`` pins the versions they were written for."""

from __future__ import annotations

import tomllib
from pathlib import Path

import aiokafka
import faust
import pytest

from ecap.patches import (
    UnsupportedVersion,
    aiokafka_no_auto_create,
    aiokafka_tansu,
    faust_batch_context,
    faust_delivery,
)
from tables import store

PYPROJECT = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())


def test_the_tansu_patch_refuses_an_aiokafka_it_does_not_know(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    was_installed = aiokafka_tansu.is_installed()
    aiokafka_tansu.uninstall()
    monkeypatch.setattr(aiokafka, "__version__", "0.99.0")
    try:
        with pytest.raises(UnsupportedVersion, match=r"this is aiokafka 0\.99\.0"):
            aiokafka_tansu.install()
        assert not aiokafka_tansu.is_installed()
    finally:
        monkeypatch.undo()
        if was_installed:
            aiokafka_tansu.install()


def test_the_no_auto_create_patch_refuses_an_aiokafka_it_does_not_know(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    was_installed = aiokafka_no_auto_create.is_installed()
    aiokafka_no_auto_create.uninstall()
    monkeypatch.setattr(aiokafka, "__version__", "0.99.0")
    try:
        with pytest.raises(UnsupportedVersion, match=r"this is aiokafka 0\.99\.0"):
            aiokafka_no_auto_create.install()
        assert not aiokafka_no_auto_create.is_installed()
    finally:
        monkeypatch.undo()
        if was_installed:
            aiokafka_no_auto_create.install()


def test_the_bulk_store_refuses_a_faust_it_does_not_know(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faust, "__version__", "0.99.0")
    with pytest.raises(UnsupportedVersion, match=r"this is Faust 0\.99\.0"):
        store.RocksDBBulkStore()


def test_tables_on_another_store_use_fausts_own_table_api() -> None:
    app = faust.App("unit-store-choice", broker="kafka://127.0.0.1:1", store="memory://")
    assert isinstance(store.store_for(app), store.TableApiStore)
    rocks = faust.App("unit-store-choice-2", broker="kafka://127.0.0.1:1", store="rocksdb://")
    assert isinstance(store.store_for(rocks), store.RocksDBBulkStore)


def test_an_exactly_once_app_writes_its_tables_through_fausts_transactional_api() -> None:
    app = faust.App(
        "unit-store-choice-3",
        broker="kafka://127.0.0.1:1",
        store="rocksdb://",
        processing_guarantee="exactly_once",
    )
    assert isinstance(store.store_for(app), store.TableApiStore)


@pytest.mark.parametrize(
    ("requirement", "supported"),
    [
        ("faust-streaming==", faust_delivery.SUPPORTED),
        ("faust-streaming==", faust_batch_context.SUPPORTED),
        ("faust-streaming==", store.SUPPORTED),
        ("mode-streaming==", faust_delivery.SUPPORTED_MODE),
        ("aiokafka[lz4]==", aiokafka_tansu.SUPPORTED),
        ("aiokafka[lz4]==", aiokafka_no_auto_create.SUPPORTED),
    ],
)
def test_the_patched_libraries_are_pinned_to_a_version_their_patches_support(
    requirement: str, supported: tuple[str, ...]
) -> None:
    pins = [d for d in PYPROJECT["project"]["dependencies"] if d.startswith(requirement)]
    assert len(pins) == 1
    assert pins[0].removeprefix(requirement).split()[0] in supported
