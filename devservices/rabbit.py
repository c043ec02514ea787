"""Make sure a local RabbitMQ answers: start ``rabbitmq-server -detached`` if its port is closed.

``python -m devservices.rabbit [--host 127.0.0.1] [--port 5672] [--timeout 60]``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time

from devservices.process import port_answers


class RabbitStartError(RuntimeError):
    """RabbitMQ could not be started or did not become ready in time."""


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/lib/rabbitmq/bin")
    if found is None:
        raise RabbitStartError(f"`{name}` not found: apt-get install -y rabbitmq-server")
    return found


def _node_running(timeout: float) -> bool:
    """Whether the local RabbitMQ node answers ``rabbitmqctl ping``."""
    try:
        ping = subprocess.run(
            [_tool("rabbitmqctl"), "-q", "ping"], capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return False
    return ping.returncode == 0


def ensure_rabbitmq(host: str = "127.0.0.1", port: int = 5672, timeout: float = 60.0) -> bool:
    """Return once RabbitMQ accepts connections on ``host:port``; whether this call started it.

    Args:
        host: where to probe; the server itself listens where its own configuration says.
        port: the AMQP port to probe.
        timeout: seconds to wait for the port and for ``rabbitmqctl await_startup``.

    Raises:
        RabbitStartError: the tools are missing, the start failed, or it was not ready within ``timeout``.
    """
    if port_answers(port, host):
        return False
    deadline = time.monotonic() + timeout
    if _node_running(timeout):
        # Starting a second node would fail on the node name anyway; the port is the problem.
        raise RabbitStartError(f"a RabbitMQ node is running but {host}:{port} does not answer")
    started = subprocess.run(
        [_tool("rabbitmq-server"), "-detached"], capture_output=True, text=True, timeout=timeout, check=False
    )
    if started.returncode != 0:
        raise RabbitStartError(
            f"rabbitmq-server -detached exited with {started.returncode}: {started.stderr or started.stdout}"
        )
    while not port_answers(port, host):
        if time.monotonic() > deadline:
            raise RabbitStartError(f"RabbitMQ did not open {host}:{port} within {timeout:g} s")
        time.sleep(0.25)
    remaining = max(1.0, deadline - time.monotonic())
    try:
        ready = subprocess.run(
            [_tool("rabbitmqctl"), "await_startup"],
            capture_output=True,
            text=True,
            timeout=remaining,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RabbitStartError(f"rabbitmqctl await_startup did not finish within {timeout:g} s") from None
    if ready.returncode != 0:
        raise RabbitStartError(f"rabbitmqctl await_startup failed: {ready.stderr or ready.stdout}")
    return True


def main(argv: list[str] | None = None) -> int:
    """``python -m devservices.rabbit``: start RabbitMQ unless it already answers."""
    parser = argparse.ArgumentParser(
        prog="python -m devservices.rabbit", description="Start RabbitMQ unless it already answers."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5672)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    try:
        started = ensure_rabbitmq(args.host, args.port, args.timeout)
    except RabbitStartError as e:
        print(e, file=sys.stderr)
        return 1
    print(f"RabbitMQ on {args.host}:{args.port}: {'started' if started else 'already running'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
