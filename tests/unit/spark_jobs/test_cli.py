"""The command line stays cheap to load, and its defaults are the jobs' defaults."""

from __future__ import annotations

import subprocess
import sys

from spark_jobs import delta_io
from spark_jobs.options import RETENTION_HOURS


def test_loading_the_command_line_does_not_load_spark() -> None:
    # `ecap` mounts this app: its other commands must not pay for starting Spark's modules.
    probe = (
        "import sys, spark_jobs.cli; "
        "print(sorted(m for m in ('pyspark', 'deltalake') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"


def test_maintains_default_retention_is_the_lakes_default() -> None:
    assert RETENTION_HOURS == delta_io.DEFAULT_RETENTION_HOURS
