"""The docs name every setting and every contract field (docs that drift are defects)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from ecap import events, topics
from ecap.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_setting_is_documented() -> None:
    text = (DOCS / "operations.md").read_text()
    missing = [f"ECAP_{name.upper()}" for name in Settings.model_fields]
    assert [env for env in missing if f"`{env}`" not in text] == []


def _section(text: str, name: str) -> str:
    match = re.search(rf"^## {name}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"docs/events.md has no '## {name}' section"
    return match.group(1)


def _fields(model: type[BaseModel]) -> set[str]:
    return set(model.model_fields)


@pytest.mark.parametrize("name", sorted(events.CONTRACTS))
def test_every_contract_field_is_documented(name: str) -> None:
    text = (DOCS / "events.md").read_text()
    section = _section(text, name)
    model = events.CONTRACTS[name]
    assert sorted(f for f in _fields(model) if f"| `{f}` |" not in section) == []


@pytest.mark.parametrize(
    ("contract", "nested"),
    [("transaction", events.LineItem), ("fraud_alert", events.AlertReason)],
)
def test_nested_fields_are_documented(contract: str, nested: type[BaseModel]) -> None:
    section = _section((DOCS / "events.md").read_text(), contract)
    assert sorted(f for f in _fields(nested) if f"| `{f}` |" not in section) == []


def test_location_fields_are_documented() -> None:
    text = (DOCS / "events.md").read_text()
    assert sorted(f for f in _fields(events.Location) if f"| `{f}` |" not in text) == []


def test_the_dead_letter_topics_of_the_catalog_are_documented() -> None:
    section = _section((DOCS / "events.md").read_text(), "dead_letter")
    named = set(re.findall(r"`([a-z-]+\.dlq)`", section))
    assert named == {s.name for s in topics.CATALOG if s.name.endswith(".dlq")}
