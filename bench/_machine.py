"""Shared by the benchmarks: what machine a figure was measured on, and the result file.

Every benchmark writes ``bench/results/<name>.json`` through :func:`write_result`, so the
files share one shape: the machine, the command, the figures and when they were taken.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or what the platform module knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """CPU count and model, memory, OS and Python: enough to compare two result files.
    The load average says whether other work shared the machine during the measurement."""
    memory_gib = None
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory_gib = round(pages / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    try:
        load = round(os.getloadavg()[0], 2)
    except OSError:
        load = None
    return {
        "cpu_count": os.cpu_count(),
        "load_average_1m": load,
        "cpu_model": cpu_model(),
        "memory_gib": memory_gib,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def command() -> str:
    """How this benchmark was started, to rerun it."""
    return shlex.join([Path(sys.executable).name, *sys.argv])


def write_result(name: str, figures: dict[str, Any], **extra: Any) -> Path:
    """Write ``bench/results/<name>.json`` and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    document = {
        "benchmark": name,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "command": command(),
        **extra,
        "figures": figures,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path
