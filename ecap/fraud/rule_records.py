"""A rule set as a record of the compacted ``fraud-rules`` topic: its key, its signature,
its limits, and the decision every reader of the topic takes on it (the workers and
``ecap rules``, so that ``ecap rules list`` shows what the workers run).

A record is a rule set's JSON (``ecap.fraud.rules``) under :data:`RULES_KEY`, with a
:data:`SIGNATURE_HEADER` header: ``hmac-sha256=<hex>``, the HMAC-SHA256 of
:data:`SIGNED_PREFIX` + the value, keyed with the rule-signing key (``ecap.auth``). Only
holders of the key (``ecap rules push``) can make a record the workers accept; anyone
else who can write to the topic can at most add records that are refused.

:class:`RuleSetLog` folds the topic's records in offset order. A record becomes the live
rule set only if, in this order:

1. it is at most :data:`MAX_RULESET_BYTES` long;
2. it carries a valid signature (``unsigned``, ``bad_signature``, or ``no_key`` when the
   reader has no usable key);
3. its JSON nests at most :data:`MAX_NESTING` deep, checked on the bytes before any parser
   recurses into them, and it validates as a rule set within the budget of
   ``ecap.fraud.rules`` (``over_budget``, ``invalid``);
4. its version is above the live set's, if one was accepted before (``stale_version``);
   the first accepted set may have any version: the shipped defaults are the fallback,
   not a version to beat.

A refused record changes nothing: the live set stays. Pure: the topic's I/O is
``ecap.fraudops.live_rules`` (operators) and ``agents.fraud_control`` (workers).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from pydantic import ValidationError

from ecap.fraud.rules import OVER_BUDGET, RuleSet

RULES_KEY = b"rule_set"
"""The one key rule sets are written under; the latest accepted record is the live set."""
MAX_RULESET_BYTES = 256 * 1024
MAX_NESTING = 16
"""Deepest nesting of JSON objects and arrays in a record (a rule set within the budget
nests at most 10 deep)."""
SIGNATURE_HEADER = "ecap-signature"
SIGNATURE_SCHEME = b"hmac-sha256="
SIGNED_PREFIX = b"ecap fraud-rules v1\n"
"""What the HMAC covers before the value: a key used for anything else signs nothing here."""

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_BRACKET = re.compile(rb"[\[\]{}]")


class Reason(StrEnum):
    """Why a record was refused (the ``reason`` label of the rejection metric)."""

    INVALID = "invalid"
    OVER_BUDGET = "over_budget"
    UNSIGNED = "unsigned"
    BAD_SIGNATURE = "bad_signature"
    NO_KEY = "no_key"
    STALE_VERSION = "stale_version"


class RuleSetError(ValueError):
    """A rule set that cannot be used; the message names what is wrong."""

    def __init__(self, message: str, reason: Reason = Reason.INVALID) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class SigningKey:
    """The HMAC key of rule sets, or (``secret`` None) why there is none."""

    secret: bytes | None
    problem: str = ""


def nesting(raw: bytes) -> int:
    """How deep the objects and arrays of the JSON ``raw`` nest, without parsing it.

    Strings are cut out first, so brackets inside them do not count. For valid JSON this
    is its exact depth; for invalid JSON it is the depth of every prefix a parser reads
    before it fails, so a parser never recurses deeper than this says.
    """
    depth = deepest = 0
    for bracket in _BRACKET.findall(_STRING.sub(b"", raw)):
        if bracket in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def parse(payload: bytes | str | None) -> RuleSet:
    """Validate and compile a rule set within its limits, or raise :class:`RuleSetError`
    saying why (its ``reason`` is ``over_budget`` or ``invalid``)."""
    if payload is None:
        raise RuleSetError("empty record (a tombstone), not a rule set")
    raw = payload.encode() if isinstance(payload, str) else payload
    _check_size(raw)
    depth = nesting(raw)
    if depth > MAX_NESTING:
        raise RuleSetError(
            f"rule set nests {depth:,} levels deep, over {MAX_NESTING}", Reason.OVER_BUDGET
        )
    try:
        return RuleSet.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors()
        over = [item for item in errors if item["type"] == OVER_BUDGET]
        problems = []
        for item in (over or errors)[:5]:
            where = ".".join(str(p) for p in item["loc"]) or "(rule set)"
            problems.append(f"{where}: {item['msg']}")
        if over:
            raise RuleSetError(
                "rule set over budget: " + "; ".join(problems), Reason.OVER_BUDGET
            ) from exc
        raise RuleSetError("invalid rule set: " + "; ".join(problems)) from exc


def _check_size(raw: bytes) -> None:
    if len(raw) > MAX_RULESET_BYTES:
        raise RuleSetError(
            f"rule set is {len(raw):,} bytes, over {MAX_RULESET_BYTES:,}", Reason.OVER_BUDGET
        )


def sign(secret: bytes, payload: bytes) -> bytes:
    """The :data:`SIGNATURE_HEADER` value of the record ``payload``."""
    digest = hmac.new(secret, SIGNED_PREFIX + payload, hashlib.sha256).hexdigest()
    return SIGNATURE_SCHEME + digest.encode()


def signature(headers: Iterable[tuple[str, str | bytes | None]] | None) -> bytes | None:
    """The signature header's value among a record's headers (the last one wins)."""
    found = None
    for name, value in headers or ():
        if name == SIGNATURE_HEADER:
            found = value.encode() if isinstance(value, str) else value
    return found


def verify(key: SigningKey, payload: bytes, given: bytes | None) -> None:
    """Raise :class:`RuleSetError` unless ``given`` is ``payload``'s signature by ``key``."""
    if key.secret is None:
        raise RuleSetError(
            f"no usable rule-signing key ({key.problem}); every pushed rule set is refused",
            Reason.NO_KEY,
        )
    if not given:
        raise RuleSetError(
            f"unsigned (no {SIGNATURE_HEADER} header): only 'ecap rules push' can change "
            "the rules; to adopt a set written before rule sets were signed, check it with "
            "'ecap rules list' and run 'ecap rules push --resign'",
            Reason.UNSIGNED,
        )
    if not hmac.compare_digest(given, sign(key.secret, payload)):
        raise RuleSetError(
            "bad signature: not signed with this worker's rule-signing key (is "
            "ECAP_RULES_SIGNING_KEY the same for the workers and 'ecap rules push'?)",
            Reason.BAD_SIGNATURE,
        )


@dataclass(frozen=True)
class Rejection:
    """A record of the topic refused, and why."""

    offset: int
    reason: Reason
    error: str


class RuleSetLog:
    """The fold of ``fraud-rules``: the live rule set (the last accepted record) and the
    decision on each record offered in offset order (see the module docstring)."""

    def __init__(self, key: SigningKey) -> None:
        self.key = key
        self.live: RuleSet | None = None
        """The last accepted rule set; None until one is (the shipped defaults run)."""
        self.live_offset: int | None = None

    def offer(self, offset: int, payload: bytes | None, given: bytes | None) -> RuleSet:
        """Accept the record at ``offset`` as the live rule set and return it, or raise
        :class:`RuleSetError` and change nothing."""
        if payload is None:
            raise RuleSetError("empty record (a tombstone), not a rule set")
        _check_size(payload)
        verify(self.key, payload, given)
        ruleset = parse(payload)
        if self.live is not None and ruleset.version <= self.live.version:
            raise RuleSetError(
                f"version {ruleset.version} does not rise above the live version "
                f"{self.live.version} (offset {self.live_offset})",
                Reason.STALE_VERSION,
            )
        self.live, self.live_offset = ruleset, offset
        return ruleset
