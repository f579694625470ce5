"""``ecap rules push`` on a rule set nested 2,000 deep died with an uncaught
``RecursionError`` (``json.loads`` recursed once per level before any limit was checked).
The nesting is now measured on the bytes, before any parser runs, and such a file is
refused with the limit it breaks."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ecap.fraud import rule_records
from ecap.fraudops.cli import rules_app

LEVELS = 2_000


def test_pushing_a_rule_set_nested_2000_deep_is_refused_with_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ECAP_HOME", str(tmp_path / "home"))
    path = tmp_path / "deep.json"
    condition = b'{"all": [' * LEVELS + b'{"feature": "amount", "op": ">", "value": 1}'
    path.write_bytes(
        b'{"version": 9, "rules": [{"id": "deep", "description": "d", "weight": 0.5, '
        b'"condition": ' + condition + b"]}" * LEVELS + b"}]}"
    )

    result = CliRunner().invoke(rules_app, ["push", str(path)])

    assert not isinstance(result.exception, RecursionError), result.exception
    assert result.exit_code == 1
    assert f"over {rule_records.MAX_NESTING}" in result.output
