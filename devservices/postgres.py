"""Make sure a local PostgreSQL answers: start the machine's cluster, or a private one, if its port is closed.

``python -m devservices.postgres [--host 127.0.0.1] [--port 5432] [--timeout 60] [--dir var/postgres]``.

A Debian cluster (``/etc/postgresql/VERSION/main``) configured for that port is started with
``pg_ctlcluster``; Debian's default ``pg_hba.conf`` trusts local and 127.0.0.1 connections. Without one,
``initdb`` makes a trust-auth cluster under ``DIR/data`` (superuser ``postgres``) and ``pg_ctl`` starts it on
``host:port`` with no unix socket, logging to ``DIR/postgres.log``. As root both run as the ``postgres``
system user, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import argparse
import os
import pwd
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from devservices.process import LOOPBACK, port_answers

DEFAULT_PORT = 5432
DEFAULT_DIR = Path("var/postgres")
SUPERUSER = "postgres"
LOG_FILE = "postgres.log"
_CONF_ROOT = Path("/etc/postgresql")
_LIB_ROOT = Path("/usr/lib/postgresql")
_INSTALL = "apt-get install -y postgresql"


class PostgresStartError(RuntimeError):
    """PostgreSQL could not be started or did not become ready in time."""


def database_url(host: str = LOOPBACK, port: int = DEFAULT_PORT, database: str = "postgres") -> str:
    """The SQLAlchemy URL of ``database`` as the trusted superuser (no password)."""
    return f"postgresql+asyncpg://{SUPERUSER}@{host}:{port}/{database}"


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.name)) or (0,)


def _find(name: str) -> str | None:
    """``name`` on ``PATH``, else in the newest ``/usr/lib/postgresql/VERSION/bin`` (where Debian puts it)."""
    found = shutil.which(name)
    if found is not None:
        return found
    for version in sorted(_LIB_ROOT.glob("*"), key=_version_key, reverse=True):
        candidate = version / "bin" / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def _tool(name: str) -> str:
    found = _find(name)
    if found is None:
        raise PostgresStartError(f"`{name}` not found: {_INSTALL}")
    return found


def _configured_port(conf: Path) -> int:
    """The ``port`` a cluster's ``postgresql.conf`` sets (the last one wins, as in PostgreSQL)."""
    port = DEFAULT_PORT
    try:
        text = conf.read_text()
    except OSError:
        return port
    for match in re.finditer(r"^\s*port\s*=\s*'?(\d+)'?", text, re.MULTILINE):
        port = int(match.group(1))
    return port


def _debian_cluster(port: int) -> str | None:
    """The newest version whose ``main`` cluster listens on ``port``; starting another would not help."""
    if shutil.which("pg_ctlcluster") is None:
        return None
    for main in sorted(_CONF_ROOT.glob("*/main"), key=lambda p: _version_key(p.parent), reverse=True):
        if _configured_port(main / "postgresql.conf") == port:
            return main.parent.name
    return None


def _as_postgres(command: list[str]) -> list[str]:
    """Root runs PostgreSQL's own tools as the ``postgres`` user: initdb and postgres refuse root."""
    if os.geteuid() != 0:
        return command
    runuser = shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin")
    if runuser is None:
        raise PostgresStartError("running as root needs `runuser` to drop to `postgres`: install util-linux")
    return [runuser, "-u", SUPERUSER, "--", *command]


def _run(command: list[str], timeout: float, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd)
    except subprocess.TimeoutExpired:
        raise PostgresStartError(f"`{shlex.join(command)}` did not finish within {timeout:g} s") from None


def _check(done: subprocess.CompletedProcess[str], what: str, log: Path | None = None) -> None:
    if done.returncode == 0:
        return
    detail = (done.stderr or done.stdout).strip()
    if log is not None and log.exists():
        detail += f"\nlog {log}:\n" + "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    raise PostgresStartError(f"{what} exited with {done.returncode}: {detail}")


def _prepare_private(base: Path) -> None:
    """Create ``base`` owned by the user PostgreSQL will run as, and check that user can reach it."""
    base.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return
    try:
        owner = pwd.getpwnam(SUPERUSER)
    except KeyError:
        raise PostgresStartError(
            f"running as root needs a `{SUPERUSER}` system user to run initdb and postgres: {_INSTALL}"
        ) from None
    os.chown(base, owner.pw_uid, owner.pw_gid)
    if subprocess.run(_as_postgres(["test", "-w", str(base)]), check=False).returncode != 0:
        raise PostgresStartError(f"user `{SUPERUSER}` cannot write {base}: a parent folder is closed to it")


def _start_private(base: Path, host: str, port: int, timeout: float) -> None:
    """``initdb`` a trust-auth cluster in ``base/data`` unless there is one, then ``pg_ctl start`` it."""
    base = base.resolve()
    data, log = base / "data", base / LOG_FILE
    pg_ctl = _tool("pg_ctl")
    _prepare_private(base)
    # cwd=base: postgres cannot read the caller's folder when runuser drops root.
    if not (data / "PG_VERSION").exists():
        command = [_tool("initdb"), "-D", str(data), "--auth=trust", "-U", SUPERUSER, "-E", "UTF8"]
        _check(_run(_as_postgres(command), timeout, cwd=base), "initdb")
    # Settings on the command line, not in the conf: the same folder can serve another --port next time.
    options = shlex.join(
        ["-c", f"listen_addresses={host}", "-p", str(port), "-c", "unix_socket_directories="]
    )
    command = [pg_ctl, "start", "-D", str(data), "-l", str(log), "-w", "-t", str(max(1, int(timeout)))]
    _check(_run(_as_postgres([*command, "-o", options]), timeout + 5, cwd=base), "pg_ctl start", log)


def _await_ready(host: str, port: int, deadline: float, timeout: float) -> None:
    while not port_answers(port, host):
        if time.monotonic() > deadline:
            raise PostgresStartError(f"PostgreSQL did not open {host}:{port} within {timeout:g} s")
        time.sleep(0.25)
    pg_isready = _find("pg_isready")
    if pg_isready is None:
        return  # the port answering is all we can check
    # pg_isready exits 1 while the server still rejects connections (starting up or recovering).
    while True:
        ready = _run([pg_isready, "-q", "-h", host, "-p", str(port), "-t", "2"], timeout=10)
        if ready.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise PostgresStartError(f"pg_isready: {host}:{port} not ready within {timeout:g} s")
        time.sleep(0.25)


def ensure_postgres(
    host: str = LOOPBACK, port: int = DEFAULT_PORT, timeout: float = 60.0, data_dir: Path = DEFAULT_DIR
) -> bool:
    """Return once PostgreSQL accepts connections on ``host:port``; whether this call started it.

    Args:
        host: where to probe, and where a private cluster listens.
        port: the port to probe; a Debian cluster is used only when configured for it.
        timeout: seconds to wait for the start, the port and ``pg_isready``.
        data_dir: the private cluster's folder (``data/`` and ``postgres.log``) when there is no Debian one.

    Raises:
        PostgresStartError: the tools are missing, the start failed, or it was not ready within ``timeout``.
    """
    if port_answers(port, host):
        return False
    deadline = time.monotonic() + timeout
    version = _debian_cluster(port)
    if version is not None:
        command = [_tool("pg_ctlcluster"), "--skip-systemctl-redirect", version, "main", "start"]
        _check(_run(command, timeout), f"pg_ctlcluster {version} main start")
    elif _find("initdb") is not None and _find("pg_ctl") is not None:
        _start_private(data_dir, host, port, timeout)
    else:
        raise PostgresStartError(f"no PostgreSQL cluster or `initdb`/`pg_ctl` found: {_INSTALL}")
    _await_ready(host, port, deadline, timeout)
    return True


def main(argv: list[str] | None = None) -> int:
    """``python -m devservices.postgres``: start PostgreSQL unless it already answers."""
    parser = argparse.ArgumentParser(
        prog="python -m devservices.postgres", description="Start PostgreSQL unless it already answers."
    )
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument(
        "--dir", type=Path, default=DEFAULT_DIR, help="private cluster folder when there is no Debian one"
    )
    args = parser.parse_args(argv)
    try:
        started = ensure_postgres(args.host, args.port, args.timeout, args.dir)
    except PostgresStartError as e:
        print(e, file=sys.stderr)
        return 1
    print(f"PostgreSQL on {args.host}:{args.port}: {'started' if started else 'already running'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
