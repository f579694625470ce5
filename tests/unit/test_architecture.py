"""The folder rule of docs/architecture.md where import-linter cannot see it: private names
of Faust and aiokafka are used only by the patches (``ecap/patches/``) and the one store
adapter (``tables/store.py``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("ecap", "agents", "tables", "web", "spark_jobs")
PRIVATE = re.compile(r"_current_event|_db_for_partition|_drain_messages|_proc_offset_request")
PATCHES = "ecap/patches/__init__.py"
"""The patches' index, which names what each patch touches."""
ALLOWED = {
    "_current_event": {PATCHES, "ecap/patches/faust_batch_context.py"},
    "_db_for_partition": {"tables/store.py"},
    "_drain_messages": {PATCHES, "ecap/patches/faust_delivery.py"},
    "_proc_offset_request": {"ecap/patches/aiokafka_tansu.py"},
}


def test_private_library_names_appear_only_in_their_patch_or_adapter() -> None:
    found: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for name in PRIVATE.findall(path.read_text()):
                found.setdefault(name, set()).add(path.relative_to(ROOT).as_posix())
    assert found == ALLOWED


ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text()


def test_every_module_path_the_architecture_doc_names_exists() -> None:
    named = set(re.findall(r"(?:[a-z_]+/)+[a-z_<>*]+\.(?:py|json)", ARCHITECTURE))
    concrete = {path for path in named if not re.search(r"[<>*]", path)}
    assert sorted(path for path in concrete if not (ROOT / path).exists()) == []


@pytest.mark.parametrize("folder", ["agents", "tables", "web"])
def test_the_architecture_doc_names_every_stream_module(folder: str) -> None:
    modules = sorted(p.name for p in (ROOT / folder).glob("*.py") if p.name != "__init__.py")
    assert [m for m in modules if f"{folder}/{m}" not in ARCHITECTURE] == []


VIEW_CODE = re.compile(r"\bapp\.page\(|\bfrom faust\.web\b|\bimport faust\.web\b")


def test_http_views_are_defined_only_in_web() -> None:
    found = sorted(
        path.relative_to(ROOT).as_posix()
        for package in PACKAGES
        if package != "web"
        for path in (ROOT / package).rglob("*.py")
        if VIEW_CODE.search(path.read_text())
    )
    assert found == []
