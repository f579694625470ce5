"""`ecap schemas export DIR` writes a JSON Schema per contract that validators accept."""

from __future__ import annotations

import json
from pathlib import Path

from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from ecap.cli import app


def test_export_writes_one_valid_schema_per_contract(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["schemas", "export", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == [
        "analytics_result.v2.schema.json",
        "customer.v2.schema.json",
        "dead_letter.v2.schema.json",
        "fraud_alert.v2.schema.json",
        "fraud_feedback.v2.schema.json",
        "fraud_label.v2.schema.json",
        "product_update.v2.schema.json",
        "transaction.v2.schema.json",
        "user_event.v2.schema.json",
    ]
    for name in files:
        Draft202012Validator.check_schema(json.loads((tmp_path / "out" / name).read_text()))


def test_exported_schema_rejects_a_bad_record(tmp_path: Path) -> None:
    CliRunner().invoke(app, ["schemas", "export", str(tmp_path)])
    schema = json.loads((tmp_path / "fraud_label.v2.schema.json").read_text())
    errors = list(Draft202012Validator(schema).iter_errors({"transaction_id": "t"}))
    assert sorted(e.message for e in errors) == [
        "'attack_id' is a required property",
        "'event_time' is a required property",
        "'scenario' is a required property",
        "'user_id' is a required property",
    ]
