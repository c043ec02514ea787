"""`cancel_deliveries` on a real RabbitMQ: the subscriber's consumer goes at once, and its `stop()` still
works afterwards. Fails when FastStream renames the private attributes it reads."""

from __future__ import annotations

import asyncio
import uuid

import aio_pika
import pytest
from faststream.rabbit import RabbitBroker, RabbitQueue

from worker.consumers import cancel_deliveries, resume_deliveries

pytestmark = pytest.mark.integration


async def consumers_of(amqp_url: str, queue: str) -> int:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        declared = await (await connection.channel()).declare_queue(queue, passive=True)
        return declared.declaration_result.consumer_count or 0


async def test_cancel_deliveries_removes_the_consumer_before_stop(rabbitmq: str) -> None:
    name = f"test-consumers-{uuid.uuid4().hex[:8]}"
    broker = RabbitBroker(rabbitmq)
    got: list[bytes] = []
    subscriber = broker.subscriber(RabbitQueue(name))

    @subscriber
    async def handle(body: bytes) -> None:
        got.append(body)

    async with broker:
        await broker.start()
        assert await consumers_of(rabbitmq, name) == 1
        await cancel_deliveries(subscriber)
        assert await consumers_of(rabbitmq, name) == 0
        await broker.publish(b"after the cancel", queue=name)
        await asyncio.sleep(0.3)
        assert got == []
        await subscriber.stop()  # nothing left to cancel, and no error
        await cancel_deliveries(subscriber)  # a second call finds nothing to do
    connection = await aio_pika.connect(rabbitmq)
    async with connection:
        await (await connection.channel()).queue_delete(name)


async def test_resume_deliveries_consumes_again_into_the_same_handler(rabbitmq: str) -> None:
    name = f"test-consumers-{uuid.uuid4().hex[:8]}"
    broker = RabbitBroker(rabbitmq)
    got: list[bytes] = []
    subscriber = broker.subscriber(RabbitQueue(name))

    @subscriber
    async def handle(body: bytes) -> None:
        got.append(body)

    async with broker:
        await broker.start()
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
    connection = await aio_pika.connect(rabbitmq)
    async with connection:
        await (await connection.channel()).queue_delete(name)
