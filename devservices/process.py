"""Small process and port helpers shared by the dev services."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from pathlib import Path

LOOPBACK = "127.0.0.1"


def port_answers(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_ports(count: int, exclude: set[int] | None = None) -> list[int]:
    """``count`` distinct ports free on 127.0.0.1 right now (all held open while picking, then released)."""
    exclude = exclude or set()
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        while len(ports) < count:
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((LOOPBACK, 0))
            port = int(sock.getsockname()[1])
            if port not in exclude:
                ports.append(port)
        return ports


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` still runs; reaps it when it is our own exited child (else it lingers as a zombie)."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass  # not our child: its parent reaps it
    else:
        if reaped:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _cmdline(pid: int) -> bytes | None:
    """The process's command line from /proc, ``b""`` when it is gone, ``None`` where there is no /proc."""
    if not Path("/proc/self").is_dir():
        return None
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def stop_pid_file(pid_path: Path, *, expect: str, timeout: float = 10.0) -> bool:
    """SIGTERM the process named in ``pid_path`` (SIGKILL after ``timeout``) and remove the file.

    Returns whether it was running. A pid whose command line lacks ``expect`` is stale (reused by another
    program) and is left alone.
    """
    try:
        pid = int(pid_path.read_text().strip())
    except (OSError, ValueError):
        return False
    cmdline = _cmdline(pid)
    if cmdline is not None and expect.encode() not in cmdline:
        pid_path.unlink(missing_ok=True)
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_path.unlink(missing_ok=True)
        return False
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.1)
    pid_path.unlink(missing_ok=True)
    return True
