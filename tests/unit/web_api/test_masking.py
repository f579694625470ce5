"""Personal data in free text is masked, keeping what kind of datum it was."""

from __future__ import annotations

import pytest

from web.api.masking import mask_text, mask_values


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("4111111111111111", "**** **** **** 1111"),
        ("4111-1111-1111-1111", "**** **** **** 1111"),
        ("mail jane.doe@example.com now", "mail j***@example.com now"),
        ("from 203.0.113.77", "from 203.0.113.***"),
        ("from 2001:db8:85a3::8a2e:370:7334", "from 2001:db8:***"),
        ("case 42 at 10:30, 3 cards", "case 42 at 10:30, 3 cards"),
    ],
)
def test_text_is_masked(text: str, masked: str) -> None:
    assert mask_text(text) == masked


def test_nested_values_are_masked_and_other_types_kept() -> None:
    value = {"after": {"body": "a@b.io", "note_id": 3, "tags": ["10.0.0.1"]}}
    assert mask_values(value) == {
        "after": {"body": "a***@b.io", "note_id": 3, "tags": ["10.0.0.***"]}
    }
