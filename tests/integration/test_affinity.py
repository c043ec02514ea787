"""Model-affinity routing over the real RabbitMQ: a job goes to the warm queue of its checkpoint when
some worker has it loaded, else to the shared queue, and a job a warm queue kept too long expires into
the shared queue. Two workers with two checkpoints then load each checkpoint once for a mixed stream."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from pathlib import Path

import aio_pika
import pytest
from faststream.rabbit import RabbitBroker

from contracts import GenerationParams, JobQueued, JobStarted, JobType
from contracts.topology import Topology
from messaging import declare, publish_event
from tests.fleet import Fleet, FleetEnv
from tests.integration.helpers import SMALL, finished, poll, post, read_log

pytestmark = pytest.mark.integration


def queued(checkpoint: str) -> JobQueued:
    params = GenerationParams(base_model_name=checkpoint)
    return JobQueued(job_id=uuid.uuid4().hex, seq=0, job_type=JobType.TEXT_TO_IMAGE, params=params)


async def bodies(channel: aio_pika.abc.AbstractChannel, queue: str) -> list[str]:
    """The job ids waiting in `queue`, taken off it."""
    found = []
    while (message := await channel.get_queue(queue, ensure=False)) and (
        got := await message.get(fail=False)
    ):
        found.append(JobQueued.model_validate_json(got.body).job_id)
        await got.ack()
    return found


async def test_jobs_go_to_their_warm_queue_and_expire_into_the_shared_one(rabbitmq: str) -> None:
    topology = Topology(f"test-{uuid.uuid4().hex[:10]}", affinity_wait_s=1.0)
    broker = RabbitBroker(rabbitmq)
    async with broker:
        await broker.connect()
        await declare(broker, topology)
        warm = await broker.declare_queue(topology.warm("alpha.safetensors"))
        await warm.bind(
            await broker.declare_exchange(topology.jobs), arguments=topology.warm("alpha").bind_arguments
        )
        alpha, beta = queued("alpha"), queued("beta.safetensors")
        for job in (alpha, beta):
            await publish_event(broker, topology, job)
        connection = await aio_pika.connect(rabbitmq)
        async with connection:
            channel = await connection.channel()
            await asyncio.sleep(0.3)
            # beta has no warm queue: straight to the shared queue; alpha waits for its warm worker.
            assert await bodies(channel, topology.work.name) == [beta.job_id]
            await asyncio.sleep(1.5)
            assert await bodies(channel, topology.work.name) == [alpha.job_id]  # waited out its affinity
            for name in (*topology.queue_names(), warm.name):
                await channel.queue_delete(name)
            for name in topology.exchange_names():
                await channel.exchange_delete(name)


def two_checkpoints(models_dir: Path, folder: Path) -> Path:
    """A models folder with the tiny checkpoint under two names."""
    source = models_dir / "checkpoints"
    target = folder / "checkpoints"
    target.mkdir(parents=True)
    for name in ("alpha", "beta"):
        shutil.copy(source / "fleet-tiny-sdxl.safetensors", target / f"{name}.safetensors")
        shutil.copytree(source / "fleet-tiny-sdxl.config", target / f"{name}.config")
    return folder


def test_two_workers_load_each_checkpoint_once_for_a_mixed_stream(
    fleet: Fleet, fleet_env: FleetEnv, models_dir: Path, tmp_path: Path
) -> None:
    folder = str(two_checkpoints(models_dir, tmp_path / "models"))
    # One checkpoint in memory per worker (cache 0): a job for the other one would mean a reload.
    for name, default in (("wa", "alpha"), ("wb", "beta")):
        fleet.worker(
            name,
            wait=False,
            FLEET_MODELS_DIR=folder,
            FLEET_DEFAULT_MODEL=default,
            FLEET_MODEL_CACHE_GB="0",
            FLEET_AFFINITY_WAIT_S="120",
        )
    for process in fleet.processes:
        process.wait_log("worker.started", timeout=120)
    edge = fleet.edge()
    # Two of a kind first: with only a shared queue the second alpha job would go to the idle beta worker.
    stream = ["alpha", "alpha.safetensors", "beta", "beta", "alpha", "beta"]
    jobs = {
        post(
            f"{edge.url}/v1/generation/text-to-image", {**SMALL, "base_model_name": m, "async_process": True}
        ).json()["job_id"]: m
        for m in stream
    }
    for job_id in jobs:
        assert poll(edge.url, job_id, finished, timeout=180)["job_stage"] == "SUCCESS"
    started = {
        e.job_id: e.worker_id
        for e in read_log(fleet_env.amqp_url, fleet_env.namespace)
        if isinstance(e, JobStarted)
    }
    assert {job_id: started[job_id] for job_id in jobs} == {
        job_id: "wa" if model.startswith("alpha") else "wb" for job_id, model in jobs.items()
    }
    for worker in fleet.processes[:2]:
        assert worker.log().count("loaded ") == 1, worker.log()[-2000:]
