"""`ecap generate`: a bad option gets a clear error that says what to do."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from ecap.generator.cli import app
from ecap.settings import get_settings

runner = CliRunner()


@pytest.fixture(autouse=True)
def no_broker(monkeypatch, tmp_path):
    """No configured broker and no embedded stack: nothing may reach a real Kafka."""
    monkeypatch.delenv("ECAP_KAFKA_BOOTSTRAP", raising=False)
    monkeypatch.setenv("ECAP_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["stream", "--rate", "0"], ["--rate", "e.g. --rate 2000"]),
        (["stream", "--duration", "-3"], ["--duration", "e.g. --duration 30"]),
        (["stream", "--fraud-rate", "1.5"], ["--fraud-rate", "0.01"]),
        (["stream", "--time-scale", "0"], ["--time-scale", "e.g. --time-scale 60"]),
        (["stream", "--customers", "3"], ["--customers", "10 to"]),
        (["stream", "--start", "yesterday"], ["--start", "ISO-8601", "now"]),
        (["stream", "--start", "2026-01-01T00:00"], ["timezone", "2026-01-01T00:00Z"]),
        (["stream", "--rate", "10", "--duration", "5"], ["catalogue", "raise --duration"]),
        (["stream", "--rate", "fast"], ["--rate", "valid number"]),
        (["history", "--customers", "0"], ["--customers"]),
        (["history", "--days", "5000"], ["--days", "1 to 3,650"]),
        (["history", "--customers", "10"], ["--out", "--to-kafka"]),
        (["history", "--out", "orders.json"], [".parquet", ".csv"]),
        (["history", "--out", "o.csv", "--end", "soon"], ["--end", "ISO-8601"]),
    ],
)
def test_a_bad_option_is_a_usage_error_naming_the_option_and_the_fix(
    arguments: list[str], expected: list[str]
) -> None:
    result = runner.invoke(app, arguments)
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    for part in expected:
        assert part in text


def test_without_a_broker_the_stream_says_how_to_get_one() -> None:
    result = runner.invoke(app, ["stream", "--duration", "10"])
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "ecap up" in text
    assert "ECAP_KAFKA_BOOTSTRAP" in text


def test_history_to_a_file_writes_it_and_prints_a_summary(tmp_path) -> None:
    out = tmp_path / "orders.parquet"
    result = runner.invoke(
        app, ["history", "--customers", "300", "--days", "90", "--seed", "4", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    assert len(frame) > 300
    assert frame["customer_id"].nunique() == 300
    assert "purchases" in result.output
    assert "2026-08-29 to 2026-11-27" in result.output


def test_history_without_a_seed_picks_one_and_prints_it(tmp_path) -> None:
    out = tmp_path / "orders.csv"
    result = runner.invoke(app, ["history", "--customers", "20", "--days", "30", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "seed" in result.output
    assert list(pd.read_csv(out).columns[:3]) == ["order_id", "customer_id", "order_time"]
