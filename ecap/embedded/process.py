"""Small helpers for the embedded servers' background processes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psutil


class StartError(RuntimeError):
    """An embedded server could not start; the message names the cause and the fix."""


def port_owner(host: str, port: int) -> str | None:
    """Describe who listens on ``host:port`` (or ``None`` when the port is free)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            pass
        else:
            return None
    with contextlib.suppress(psutil.Error):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                if conn.pid:
                    with contextlib.suppress(psutil.Error):
                        return f"{psutil.Process(conn.pid).name()} (pid {conn.pid})"
                return "another process"
    return "another process"


def tcp_ready(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def spawn(argv: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start a detached server process whose output goes to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def wait_until(check: Callable[[], bool], timeout: float, proc: psutil.Process | None) -> bool:
    """Poll ``check`` until it holds, the process dies, or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        if proc is not None and not proc.is_running():
            return False
        time.sleep(0.05)
    return check()


def log_tail(path: Path, lines: int = 8) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def alive(pid: int, create_time: float | None) -> bool:
    """True when ``pid`` runs and is the same process we started (not a reused pid)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return create_time is None or abs(proc.create_time() - create_time) < 1.0
    except psutil.Error:
        return False


def create_time(pid: int) -> float:
    return psutil.Process(pid).create_time()


def terminate(pid: int, created: float | None, timeout: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL it if it has not exited in ``timeout``."""
    if not alive(pid, created):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
        os.killpg(pid, signal.SIGCONT)  # a stopped process handles SIGTERM only once continued
    proc = psutil.Process(pid)
    with contextlib.suppress(psutil.Error):
        proc.wait(timeout)
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(psutil.Error):
        proc.wait(5)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now (for tests and benchmarks)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
