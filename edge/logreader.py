"""Reading the event log into the read model: RabbitMQ's `{ns}.log` stream, from a stored offset.

Consumed with aio-pika directly rather than through a FastStream subscriber: a new edge may fold
hundreds of thousands of events, and FastStream's per-message dependency resolution (thread hops
included) cost about half a millisecond per event on a 2-core machine, several times the fold itself.
Acks only return credit on a stream (what is redelivered is decided by the offset), so one ack of
everything delivered goes out after each commit: the prefetch bounds what waits in memory.

Reconnection: aio-pika's robust connection re-subscribes with the very `arguments` dict given here, and
each commit moves its offset to the one after the committed position, so a reconnection resumes after
what the read model holds: it neither replays the log nor misses what came meanwhile.
"""

from __future__ import annotations

import logging
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from contracts.topology import Topology
from edge.readmodel.batches import LogFolder

log = logging.getLogger(__name__)

STREAM_OFFSET = "x-stream-offset"
PREFETCH = 2000  # events in memory at most: delivered, not yet committed


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
        self._latest: AbstractIncomingMessage | None = None

    @property
    def offset(self) -> int | str:
        """Where the consumer (re)starts: the offset after the committed position."""
        return self.arguments[STREAM_OFFSET]  # type: ignore[no-any-return]

    def committed(self, position: int) -> None:
        """A reconnection resumes after `position`."""
        self.arguments[STREAM_OFFSET] = position + 1

    async def release(self) -> None:
        """Return the credit of everything delivered so far (after a commit)."""
        latest, self._latest = self._latest, None
        if latest is not None:
            try:
                await latest.ack(multiple=True)
            except Exception as error:  # its channel is gone: the new one starts with full credit
                log.debug("no ack for the log's credit: %r", error)

    async def start(self, position: int) -> None:
        """Consume from the offset after `position` (-1: from the log's first offset)."""
        self.committed(position)
        self._connection = await aio_pika.connect_robust(
            self.amqp_url, reconnect_interval=self.reconnect_interval_s
        )
        self._connection.reconnect_callbacks.add(self._reconnected)
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=PREFETCH)
        stream = self.topology.log
        queue = await channel.declare_queue(stream.name, durable=True, arguments=stream.arguments)
        await queue.consume(self.on_message, arguments=self.arguments)

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        self._latest = message
        offset = message.headers.get(STREAM_OFFSET)
        self.folder.add(offset if isinstance(offset, int) else None, message.body)

    def _reconnected(self, *_: object) -> None:
        self._latest = None  # delivery tags start again on the new channel
        log.info("edge.reconnected to the broker; the log resumes at offset %s", self.offset)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
