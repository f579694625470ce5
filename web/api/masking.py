"""Masking of personal data for roles that do not need it (``access.SEES_PERSONAL_DATA``).

Free text (case notes, verdict notes, audit entries) is where an investigator writes down
an e-mail address, an IP address or a card number; for other roles each is replaced by a
masked form that still tells what it was: ``j***@example.com``, ``203.0.113.***``,
``**** **** **** 1111``. Pure functions.
"""

from __future__ import annotations

import re
from typing import Any

_EMAIL = re.compile(r"\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})\b")
_IPV4 = re.compile(r"\b(\d{1,3}\.\d{1,3}\.\d{1,3})\.\d{1,3}\b")
_IPV6 = re.compile(r"\b((?:[0-9A-Fa-f]{1,4}:){2})(?:[0-9A-Fa-f]{0,4}:){1,6}[0-9A-Fa-f]{0,4}\b")
_CARD = re.compile(r"\b(?:\d[ -]?){9,15}(\d{4})\b")
"""13 to 19 digits, optionally grouped by spaces or dashes: a payment card number."""


def mask_text(text: str) -> str:
    text = _CARD.sub(lambda m: f"**** **** **** {m.group(1)}", text)
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    text = _IPV4.sub(lambda m: f"{m.group(1)}.***", text)
    return _IPV6.sub(lambda m: f"{m.group(1)}***", text)


def mask_values(value: Any) -> Any:
    """``value`` with every string in it masked (dicts and lists walked)."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {key: mask_values(item) for key, item in value.items()}
    if isinstance(value, list):
        return [mask_values(item) for item in value]
    return value
