"""A private RabbitMQ node in a folder of its own, for tests that stop and restart the broker.

The shared broker on 5672 serves everyone on the machine and must never be stopped; fault tests start
one of these instead. It has its own node name, AMQP and distribution ports, data, logs and Erlang cookie,
no plugins, and listens on 127.0.0.1 only. Its data survives ``stop()``/``start()``, as a real broker
restart keeps durable queues and their messages.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from devservices.process import LOOPBACK, free_ports, port_answers

_BIN = Path("/usr/lib/rabbitmq/bin")
# RabbitMQ's own default (30 min). RabbitMQ before 3.12 has no per-queue `x-consumer-timeout`: there the
# server setting is the only one, so a node meant for long jobs is started with a larger one.
DEFAULT_CONSUMER_TIMEOUT_MS = 30 * 60 * 1000


class RabbitNodeError(RuntimeError):
    """The private node did not start or stop in time."""


def _tool(name: str) -> str:
    """The real script, not Debian's /usr/sbin wrapper that switches to the rabbitmq user."""
    beside = _BIN / name
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise RabbitNodeError(f"`{name}` not found: apt-get install -y rabbitmq-server")
    return found


@dataclass
class RabbitNode:
    """One private node; ``amqp_url`` is where clients connect."""

    base: Path
    name: str = field(default_factory=lambda: f"fleet-test-{uuid.uuid4().hex[:8]}@localhost")
    port: int = 0
    dist_port: int = 0
    consumer_timeout_ms: int = DEFAULT_CONSUMER_TIMEOUT_MS
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.port:
            self.port, self.dist_port = free_ports(2)
        self.base.mkdir(parents=True, exist_ok=True)
        (self.base / "rabbitmq.conf").write_text(
            f"loopback_users = none\nconsumer_timeout = {self.consumer_timeout_ms}\n"
        )
        (self.base / "enabled_plugins").write_text("[].\n")
        (self.base / "rabbitmq-env.conf").write_text("")  # not /etc/rabbitmq's: it names the shared node

    @property
    def amqp_url(self) -> str:
        return f"amqp://guest:guest@{LOOPBACK}:{self.port}/"

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "HOME": str(self.base),  # its own Erlang cookie, shared by the server and the CLI
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": LOOPBACK,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(self.base / "rabbitmq-env.conf"),
            "RABBITMQ_PID_FILE": str(self.base / "node.pid"),
            "ERL_EPMD_ADDRESS": LOOPBACK,
        }

    def _ctl(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [_tool("rabbitmqctl"), "-q", "-n", self.name, *args],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, timeout: float = 90.0) -> RabbitNode:
        """Start the node and return once it accepts AMQP connections."""
        if self.process is not None and self.process.poll() is None:
            return self
        (self.base / "node.pid").unlink(missing_ok=True)
        with (self.base / "server.log").open("ab") as log:
            self.process = subprocess.Popen(
                [_tool("rabbitmq-server")],
                env=self._env(),
                cwd=self.base,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while not port_answers(self.port):
            if self.process.poll() is not None:
                raise RabbitNodeError(f"{self.name} exited with {self.process.returncode}: {self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RabbitNodeError(f"{self.name} did not open port {self.port} in {timeout:g} s")
            time.sleep(0.2)
        ready = self._ctl("await_startup", "--timeout", str(int(timeout)), timeout=timeout)
        if ready.returncode != 0:
            raise RabbitNodeError(f"{self.name} await_startup: {ready.stderr or ready.stdout}")
        return self

    def stop(self, timeout: float = 60.0) -> None:
        """Stop the node gracefully, as ``rabbitmqctl stop`` does; kill it if that hangs.

        SIGTERM to the foreground ``rabbitmq-server`` is RabbitMQ's own graceful stop (what Docker and
        systemd send), and it starts at once: ``rabbitmqctl`` first boots an Erlang VM, seconds when busy.
        """
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._ctl("stop", timeout=timeout)
            self.process.kill()
            self.process.wait(10)

    def log_tail(self, lines: int = 20) -> str:
        path = self.base / "server.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> RabbitNode:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
