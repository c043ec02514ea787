"""Fixtures for fault tests: a private RabbitMQ node and a private S3 server that tests may stop,
fleets on them, and the figures summary printed after the run."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from contracts.topology import CONSUMER_TIMEOUT_MS, Topology
from devservices.rabbit_node import RabbitNode
from devservices.s3 import WeedServer
from tests.conftest import _delete_namespace
from tests.faults.support import FIGURES, RestartableS3
from tests.fleet import Fleet, FleetEnv

MakeFleet = Callable[..., Fleet]


@pytest.fixture
def private_rabbit(tmp_path: Path) -> Iterator[RabbitNode]:
    """A RabbitMQ node of this test alone: the shared one on 5672 must never be stopped."""
    node = RabbitNode(tmp_path / "rabbit", consumer_timeout_ms=CONSUMER_TIMEOUT_MS).start()
    yield node
    node.stop()


@pytest.fixture
def private_s3(tmp_path: Path) -> Iterator[RestartableS3]:
    """An S3 server of this test alone, so stopping it disturbs no other test."""
    server = RestartableS3(tmp_path / "s3").start()
    yield server
    server.stop()


@pytest.fixture
def make_fleet(
    rabbitmq: str, s3_server: WeedServer, models_dir: Path, cache_dir: Path, tmp_path: Path
) -> Iterator[MakeFleet]:
    """`make_fleet(amqp_url=..., s3_endpoint=...)`: a fleet in a fresh namespace, on the shared services
    unless told otherwise; its processes are stopped and its namespace deleted afterwards."""
    made: list[tuple[Fleet, FleetEnv]] = []

    def make(amqp_url: str = rabbitmq, s3_endpoint: str = s3_server.endpoint) -> Fleet:
        namespace = f"fault-{uuid.uuid4().hex[:10]}"
        logs = tmp_path / f"logs-{len(made)}"
        logs.mkdir()
        # One torch thread per process: two workers share two cores with everything else on the machine.
        threads = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        env = FleetEnv(amqp_url, namespace, s3_endpoint, namespace, models_dir, cache_dir, logs, threads)
        fleet = Fleet(env)
        made.append((fleet, env))
        return fleet

    yield make
    for fleet, env in made:
        fleet.stop()
        if env.amqp_url == rabbitmq:
            asyncio.run(_delete_namespace(rabbitmq, Topology(env.namespace)))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("fault figures")
        for test, name, value in FIGURES:
            terminalreporter.write_line(f"{test}: {name} = {value}")
