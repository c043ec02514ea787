"""Reading the event log into the read model: RabbitMQ's `{ns}.log` stream, from a stored offset.

Consumed on an aio-pika robust channel's own aiormq channel rather than through a FastStream subscriber:
a new edge may fold hundreds of thousands of events, and FastStream's per-message dependency resolution
(thread hops included) cost about half a millisecond per event on a 2-core machine, aio-pika's message
objects about a tenth of one, several times what aiormq's plain deliveries cost.
Acks only return credit on a stream (what is redelivered is decided by the offset), so one ack of
everything delivered goes out as each batch is taken to fold: the broker sends the next batch while
this one is committed, and the prefetch bounds what waits in memory besides the batch being folded.

Reconnection: aio-pika's robust connection restores the channel, then this reader subscribes again with
its `arguments`, whose offset each commit moves to the one after the committed position, so a
reconnection resumes after what the read model holds: it neither replays the log nor misses what came
meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aio_pika
from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection
from aiormq.abc import AbstractChannel, DeliveredMessage

from contracts.topology import Topology
from edge.readmodel.batches import LogFolder

log = logging.getLogger(__name__)

STREAM_OFFSET = "x-stream-offset"
PREFETCH = 2000  # events delivered and not yet taken to fold, at most
LOG_END_SETTLE_S = 0.3
LOG_END_MAX_S = 5.0


class LogReader:
    """One edge's consumer of the log, feeding `folder`."""

    def __init__(
        self, amqp_url: str, topology: Topology, folder: LogFolder, reconnect_interval_s: float
    ) -> None:
        self.amqp_url = amqp_url
        self.topology = topology
        self.folder = folder
        self.reconnect_interval_s = reconnect_interval_s
        self.arguments: dict[str, Any] = {STREAM_OFFSET: "first"}
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._latest: tuple[AbstractChannel, int] | None = None  # the newest delivery, to ack up to

    @property
    def offset(self) -> int | str:
        """Where the consumer (re)starts: the offset after the committed position."""
        return self.arguments[STREAM_OFFSET]  # type: ignore[no-any-return]

    def committed(self, position: int) -> None:
        """A reconnection resumes after `position`."""
        self.arguments[STREAM_OFFSET] = position + 1

    async def release(self) -> None:
        """Return the credit of everything delivered so far (as a batch is taken to fold)."""
        latest, self._latest = self._latest, None
        if latest is not None:
            channel, delivery_tag = latest
            try:
                await channel.basic_ack(delivery_tag, multiple=True)
            except Exception as error:  # its channel is gone: the new one starts with full credit
                log.debug("no ack for the log's credit: %r", error)

    async def start(self, position: int) -> None:
        """Consume from the offset after `position` (-1: from the log's first offset)."""
        self.committed(position)
        self._connection = await aio_pika.connect_robust(
            self.amqp_url, reconnect_interval=self.reconnect_interval_s
        )
        self._channel = await self._connection.channel()
        await self._channel.set_qos(prefetch_count=PREFETCH)
        stream = self.topology.log
        await self._channel.declare_queue(stream.name, durable=True, arguments=stream.arguments)
        self._connection.reconnect_callbacks.add(self._reconnected)
        await self._subscribe()

    async def _subscribe(self) -> None:
        assert self._channel is not None
        channel = await self._channel.get_underlay_channel()

        async def on_message(message: DeliveredMessage) -> None:
            self._latest = (channel, message.delivery_tag)
            headers = message.header.properties.headers or {}
            self.receive(headers.get(STREAM_OFFSET), message.body)

        await channel.basic_consume(self.topology.log.name, on_message, arguments=self.arguments)

    def receive(self, offset: object, body: bytes) -> None:
        """One delivery of the log: its stream offset (an int, from RabbitMQ) and body."""
        self.folder.add(offset if isinstance(offset, int) else None, body)

    async def _reconnected(self, *_: object) -> None:
        # The robust connection restored the channel (not this consumer, which is not aio-pika's).
        self._latest = None
        log.info("edge.reconnected to the broker; the log resumes at offset %s", self.offset)
        await self._subscribe()

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()


async def log_end(amqp_url: str, topology: Topology, settle_s: float = LOG_END_SETTLE_S) -> int:
    """The last offset in the log (-1: empty), read from its last chunk: what arrives before the log
    has been quiet for `settle_s`, or for at most `LOG_END_MAX_S`. A snapshot past it belongs to
    another log (a broker whose log was deleted and declared again), not to this one."""
    offsets: list[int] = [-1]
    quiet = asyncio.Event()
    async with await aio_pika.connect(amqp_url) as connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=PREFETCH)
        stream = topology.log
        queue = await channel.declare_queue(stream.name, durable=True, arguments=stream.arguments)

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            offset = (message.headers or {}).get(STREAM_OFFSET)
            if isinstance(offset, int):
                offsets.append(offset)
            quiet.clear()
            await message.ack()

        await queue.consume(on_message, arguments={STREAM_OFFSET: "last"})
        deadline = asyncio.get_running_loop().time() + LOG_END_MAX_S
        while asyncio.get_running_loop().time() < deadline:
            quiet.set()
            await asyncio.sleep(settle_s)
            if quiet.is_set():
                break
    return max(offsets)
