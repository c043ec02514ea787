"""What every fault test does: submit a batch, break something, then count.

The count is the same everywhere: every accepted job has exactly one terminal event (distinct
`event_id`; a republished one keeps its id), and every image of every success is in S3. Figures the
tests measure are collected here and printed at the end of the run (see `conftest.py`).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from contracts import JobFailed, JobStarted, JobSucceeded
from devservices.s3 import WeedServer, start_weed
from storage import ObjectStore, StorageSettings
from tests.fleet import FleetEnv, Process
from tests.integration.helpers import SMALL, finished, poll, post, read_log, terminal_events

# Long enough to be caught mid-job on a loaded 2-core machine, short enough for a batch in seconds.
SLOW = {**SMALL, "advanced_params": {"overwrite_step": 10}}
FIGURES: list[tuple[str, str, str]] = []


def record(test: str, name: str, value: float | int | str, unit: str = "") -> None:
    """Keep one measured figure for the end-of-run summary (and docs/reliability.md)."""
    shown = f"{value:.2f}" if isinstance(value, float) else str(value)
    FIGURES.append((test, name, f"{shown} {unit}".strip()))


def submit(edge_url: str, body: dict[str, Any] | None = None, **extra: Any) -> str:
    """Submit one async job and return its id (it must be accepted)."""
    response = post(
        f"{edge_url}/v1/generation/text-to-image", {**(body or SLOW), "async_process": True, **extra}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["job_id"])


def submit_batch(edge_url: str, count: int, body: dict[str, Any] | None = None) -> list[str]:
    return [submit(edge_url, body, image_seed=1000 + i) for i in range(count)]


def wait_finished(edge_url: str, job_ids: list[str], timeout: float = 120) -> list[dict[str, Any]]:
    """Every job's final view, once each has ended (any outcome)."""
    deadline = time.monotonic() + timeout
    return [
        poll(edge_url, job_id, finished, timeout=max(1.0, deadline - time.monotonic())) for job_id in job_ids
    ]


@dataclass
class Tally:
    """What the log and the bucket say about a batch."""

    accepted: int
    ended_once: int
    outcomes: Counter[str] = field(default_factory=Counter)  # "succeeded" or the failure code
    missing_images: list[str] = field(default_factory=list)
    redeliveries: int = 0  # starts beyond the first attempt
    duplicates: list[str] = field(default_factory=list)  # jobs with more than one terminal event

    def assert_sound(self) -> None:
        """The guarantee: each accepted job ended exactly once, and no success lacks a file."""
        assert self.ended_once == self.accepted, (
            f"{self.accepted - self.ended_once} jobs did not end once: {self}"
        )
        assert not self.duplicates, self.duplicates
        assert not self.missing_images, self.missing_images


def tally(env: FleetEnv, job_ids: list[str]) -> Tally:
    """Count the batch from the namespace's log (from its first offset) and the bucket."""
    events = read_log(env.amqp_url, env.namespace)
    store = ObjectStore(
        StorageSettings(endpoint=env.s3_endpoint, bucket=env.bucket, access_key="any", secret_key="any")
    )
    counted = Tally(accepted=len(job_ids), ended_once=0)
    for job_id in job_ids:
        ends = terminal_events(events, job_id)
        if len(ends) > 1:
            counted.duplicates.append(job_id)
        if len(ends) != 1:
            continue
        counted.ended_once += 1
        [end] = ends
        if isinstance(end, JobSucceeded):
            counted.outcomes["succeeded"] += 1
            for image in end.images:
                if not asyncio.run(store.exists(image.key)):
                    counted.missing_images.append(image.key)
        else:
            counted.outcomes[end.code if isinstance(end, JobFailed) else end.type] += 1
    counted.redeliveries = sum(
        1 for e in events if isinstance(e, JobStarted) and e.job_id in set(job_ids) and e.attempt > 1
    )
    return counted


_STARTED = re.compile(r"job\.started (\S+)")
_ENDED = re.compile(r"job\.ended (\S+)|handing it back|handing the job back")


def running_job(worker: Process) -> str | None:
    """The job a worker runs now, from its log: a `job.started` line with no end after it."""
    text = worker.log()
    starts = list(_STARTED.finditer(text))
    if not starts:
        return None
    last = starts[-1]
    return None if _ENDED.search(text, last.end()) else last.group(1)


def wait_running(workers: list[Process], timeout: float = 60) -> tuple[Process, str]:
    """The first worker seen running a job, and that job."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for worker in workers:
            job_id = running_job(worker) if worker.alive else None
            if job_id is not None:
                return worker, job_id
        time.sleep(0.05)
    raise TimeoutError("no worker started a job")


def query(edge_url: str, job_id: str) -> dict[str, Any]:
    return httpx.get(f"{edge_url}/v1/generation/query-job", params={"job_id": job_id}, timeout=10).json()


@dataclass
class RestartableS3:
    """A private `weed mini` that a test may stop and start again on the same port and data."""

    data_dir: Path
    server: WeedServer | None = None
    port: int | None = None

    def start(self) -> RestartableS3:
        self.server = start_weed(self.data_dir, self.port)
        self.port = self.server.ports.s3
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"


def cut_broker_connections(pid: int) -> int:
    """Close, from the broker's side, every AMQP connection of process `pid` (as a network fault would);
    the number closed. The process's own sockets name the ports RabbitMQ sees as peer ports."""
    sockets = subprocess.run(["ss", "-Htnp", "dport = :5672"], capture_output=True, text=True, check=True)
    ports = {
        line.split()[3].rsplit(":", 1)[1] for line in sockets.stdout.splitlines() if f"pid={pid}," in line
    }
    rabbitmqctl = shutil.which("rabbitmqctl") or shutil.which("rabbitmqctl", path="/usr/sbin")
    assert rabbitmqctl is not None
    listed = subprocess.run(
        [rabbitmqctl, "-q", "list_connections", "pid", "peer_port"],
        capture_output=True,
        text=True,
        check=True,
    )
    closed = 0
    for line in listed.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] in ports:
            subprocess.run([rabbitmqctl, "close_connection", parts[0], "fault test: cut"], check=True)
            closed += 1
    return closed
