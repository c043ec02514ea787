"""Shared fixtures: the real RabbitMQ, PostgreSQL and S3 server, the tiny model, and one fleet per test."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aio_pika
import asyncpg
import pytest

from contracts.topology import Topology
from devservices.postgres import database_url, ensure_postgres
from devservices.rabbit import ensure_rabbitmq
from devservices.s3 import WeedServer, start_weed
from tests.fleet import Fleet, FleetEnv

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
PG_HOST, PG_PORT = "127.0.0.1", 5432


@pytest.fixture(scope="session")
def rabbitmq() -> str:
    ensure_rabbitmq()
    return AMQP_URL


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The superuser URL of the ``postgres`` database; starts PostgreSQL if it is not running."""
    ensure_postgres(PG_HOST, PG_PORT)
    return database_url(PG_HOST, PG_PORT, "postgres")


async def _postgres_admin(sql: str) -> None:
    """Run one statement in the ``postgres`` database as the superuser (trust auth on loopback)."""
    connection = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="postgres")
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture
async def postgres_url(postgres_server: str) -> AsyncIterator[str]:
    """A fresh empty database of this test's own; dropped afterwards, FORCE ending connections left open."""
    name = f"fleet_test_{uuid.uuid4().hex[:8]}"
    await _postgres_admin(f'CREATE DATABASE "{name}"')
    yield database_url(PG_HOST, PG_PORT, name)
    await _postgres_admin(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WeedServer]:
    server = start_weed(tmp_path_factory.mktemp("weed"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A worker models folder with tiny random-weight versions of every model the endpoints use."""
    from tests.worker.tiny_blip import write_tiny_blip
    from tests.worker.tiny_grounded_sam import write_tiny_grounded_sam
    from tests.worker.tiny_models import write_tiny_image_prompt_models
    from tests.worker.tiny_onnx import write_tiny_mask_models
    from worker.engine.tiny import write_tiny_checkpoint

    folder = tmp_path_factory.mktemp("models")
    write_tiny_checkpoint(folder / "checkpoints")
    write_tiny_image_prompt_models(folder)
    write_tiny_blip(folder / "captioners" / "blip-image-captioning-base")
    write_tiny_mask_models(folder / "masks")  # isnet-general-use and u2net; no WD14 tagger
    write_tiny_grounded_sam(folder)  # GroundingDINO + SAM vit_b: the enhance tabs' default `sam` masks
    return folder


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


async def _delete_namespace(url: str, topology: Topology) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        for name in topology.queue_names():
            await channel.queue_delete(name)
        for name in topology.exchange_names():
            await channel.exchange_delete(name)


@contextlib.contextmanager
def namespace_env(
    rabbitmq: str, s3_server: WeedServer, models_dir: Path, cache_dir: Path, tmp_path: Path
) -> Iterator[FleetEnv]:
    """A fresh broker namespace and bucket, removed afterwards so the stream does not pile up."""
    namespace = f"test-{uuid.uuid4().hex[:10]}"
    logs = tmp_path / "logs"
    logs.mkdir()
    yield FleetEnv(
        amqp_url=rabbitmq,
        namespace=namespace,
        s3_endpoint=s3_server.endpoint,
        bucket=namespace,
        models_dir=models_dir,
        cache_dir=cache_dir,
        logs=logs,
    )
    asyncio.run(_delete_namespace(rabbitmq, Topology(namespace)))


@pytest.fixture
def fleet_env(
    rabbitmq: str, s3_server: WeedServer, models_dir: Path, cache_dir: Path, tmp_path: Path
) -> Iterator[FleetEnv]:
    with namespace_env(rabbitmq, s3_server, models_dir, cache_dir, tmp_path) as env:
        yield env


@pytest.fixture
def fleet(fleet_env: FleetEnv) -> Iterator[Fleet]:
    running = Fleet(fleet_env)
    yield running
    running.stop()
