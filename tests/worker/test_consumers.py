"""`cancel_deliveries` on a real RabbitMQ: the subscriber's consumer goes at once, and its `stop()` still
works afterwards. Fails when FastStream renames the private attributes it reads."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import aio_pika
import pytest
from faststream.rabbit import RabbitBroker, RabbitQueue
from faststream.rabbit.subscriber import RabbitSubscriber

from contracts.topology import Topology
from messaging import declare
from worker.affinity import JobConsumers
from worker.consumers import cancel_deliveries, resume_deliveries

pytestmark = pytest.mark.integration


async def consumers_of(amqp_url: str, queue: str) -> int:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        declared = await (await connection.channel()).declare_queue(queue, passive=True)
        return declared.declaration_result.consumer_count or 0


@contextlib.asynccontextmanager
async def recording(amqp_url: str) -> AsyncIterator[tuple[RabbitBroker, RabbitSubscriber, str, list[bytes]]]:
    """A started broker with one subscriber on a fresh queue, recording the bodies it handles."""
    name = f"test-consumers-{uuid.uuid4().hex[:8]}"
    broker = RabbitBroker(amqp_url)
    got: list[bytes] = []
    subscriber = broker.subscriber(RabbitQueue(name))

    @subscriber
    async def handle(body: bytes) -> None:
        got.append(body)

    async with broker:
        await broker.start()
        yield broker, subscriber, name, got
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        await (await connection.channel()).queue_delete(name)


async def test_cancel_deliveries_removes_the_consumer_before_stop(rabbitmq: str) -> None:
    async with recording(rabbitmq) as (broker, subscriber, name, got):
        assert await consumers_of(rabbitmq, name) == 1
        await cancel_deliveries(subscriber)
        assert await consumers_of(rabbitmq, name) == 0
        await broker.publish(b"after the cancel", queue=name)
        await asyncio.sleep(0.3)
        assert got == []
        await subscriber.stop()  # nothing left to cancel, and no error
        await cancel_deliveries(subscriber)  # a second call finds nothing to do


async def test_resume_deliveries_consumes_again_into_the_same_handler(rabbitmq: str) -> None:
    async with recording(rabbitmq) as (broker, subscriber, name, got):
        await cancel_deliveries(subscriber)
        await broker.publish(b"while paused", queue=name)
        await asyncio.sleep(0.3)
        assert got == []
        await resume_deliveries(subscriber)
        await resume_deliveries(subscriber)  # consuming already: no second consumer
        assert await consumers_of(rabbitmq, name) == 1
        for _ in range(30):
            if got:
                break
            await asyncio.sleep(0.1)
        assert got == [b"while paused"]


async def test_job_consumers_pause_while_a_job_runs_and_resume_after_it(rabbitmq: str) -> None:
    topology = Topology(f"test-{uuid.uuid4().hex[:10]}")
    broker = RabbitBroker(rabbitmq)

    async def handle(message: object) -> None:
        pass

    consumers = JobConsumers(broker, topology, handle)  # type: ignore[arg-type]
    async with broker:
        await broker.connect()
        await declare(broker, topology)
        await broker.start()
        await consumers.follow(["alpha.safetensors"])
        warm = topology.warm("alpha").name
        assert [await consumers_of(rabbitmq, q) for q in (topology.work.name, warm)] == [1, 1]
        assert consumers.take("job-1") and not consumers.take("job-2")  # one job per worker
        await consumers.started("job-1")
        assert [await consumers_of(rabbitmq, q) for q in (topology.work.name, warm)] == [0, 0]
        consumers.settle_soon([])  # memory released mid-job: the warm queue goes, nothing resumes
        await asyncio.gather(*consumers._settles)
        assert consumers.warm == {} and await consumers_of(rabbitmq, topology.work.name) == 0
        consumers.ended(["alpha"])  # the job is over: follow the loaded checkpoint and take jobs again
        await asyncio.gather(*consumers._settles)
        assert [await consumers_of(rabbitmq, q) for q in (topology.work.name, warm)] == [1, 1]
        assert consumers.take("job-2")
    connection = await aio_pika.connect(rabbitmq)
    async with connection:
        channel = await connection.channel()
        for name in (*topology.queue_names(), warm):
            await channel.queue_delete(name)
        for name in topology.exchange_names():
            await channel.exchange_delete(name)
