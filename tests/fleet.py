"""Running the real processes for integration tests: workers and edges as subprocesses."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class FleetEnv:
    """What every process of one test fleet shares: broker namespace, S3 bucket, models."""

    amqp_url: str
    namespace: str
    s3_endpoint: str
    bucket: str
    models_dir: Path
    cache_dir: Path
    logs: Path
    extra: dict[str, str] = field(default_factory=dict)  # more variables for every process

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            **self.extra,
            "FLEET_AMQP_URL": self.amqp_url,
            "FLEET_NAMESPACE": self.namespace,
            "FLEET_S3_ENDPOINT": self.s3_endpoint,
            "FLEET_S3_BUCKET": self.bucket,
            "FLEET_S3_ACCESS_KEY": "any",
            "FLEET_S3_SECRET_KEY": "any",
            "FLEET_MODELS_DIR": str(self.models_dir),
            "FLEET_CACHE_DIR": str(self.cache_dir),
            "FLEET_PROGRESS_INTERVAL_S": "0.05",
            # A killed worker's claim on its job runs out this fast, so its redelivery waits little.
            "FLEET_CLAIM_LEASE_S": "6",
            "PYTHONUNBUFFERED": "1",
            **extra,
        }


@dataclass
class Process:
    """One fleet subprocess with its log file."""

    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> Process:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fleet_cli", *self.args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_log(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log()[-3000:]}")
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} never logged {text!r}:\n{self.log()[-3000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class Edge(Process):
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60) -> Edge:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log()[-3000:]}")
            try:
                # Serving and caught up with the log (open without the API key).
                if httpx.get(f"{self.url}/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready:\n{self.log()[-3000:]}")


class Fleet:
    """Starts and stops the processes of one test."""

    def __init__(self, env: FleetEnv) -> None:
        self.fleet_env = env
        self.processes: list[Process] = []

    def worker(
        self, name: str = "worker", *, wait: bool = True, log_name: str | None = None, **extra_env: str
    ) -> Process:
        """Start a worker (id `name`); `wait` for it to be ready; `log_name` keeps a restart's log apart."""
        env = self.fleet_env.env(FLEET_WORKER_ID=name, **extra_env)
        log_path = self.fleet_env.logs / f"{log_name or name}.log"
        process = Process(name, ["worker"], env, log_path).start()
        self.processes.append(process)
        if wait:
            process.wait_log("worker.started", timeout=120)
        return process

    def edge(self, name: str = "edge", *args: str, port: int | None = None, **extra_env: str) -> Edge:
        port = port or free_port()
        # Each edge name its own read model, kept across a restart of that name (a warm restart).
        read_model = f"sqlite:///{self.fleet_env.logs / f'{name}.db'}"
        env = self.fleet_env.env(**{"FLEET_READ_MODEL_URL": read_model, **extra_env})
        edge = Edge(name, ["edge", "--port", str(port), *args], env, self.fleet_env.logs / f"{name}.log")
        edge.port = port
        edge.start()
        self.processes.append(edge)
        return edge.wait_ready()

    def stop(self) -> None:
        for process in self.processes:
            process.kill(signal.SIGTERM)
