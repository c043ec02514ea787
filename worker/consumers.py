"""Stopping a FastStream subscriber's deliveries at once, which FastStream 0.7 has no public call for.

`RabbitSubscriber.stop()` cancels its consumer only after the running handler returns. A worker leaving
on SIGTERM must stop taking jobs first: a job handed back meanwhile would be redelivered to this very
consumer, dropped, and cost a delivery attempt. So this reaches into the subscriber's aio-pika queue
and consumer tag, the one place in the worker that uses FastStream's private attributes;
`tests/worker/test_consumers.py` fails when FastStream renames them.
"""

from __future__ import annotations

import logging

from faststream.rabbit.subscriber import RabbitSubscriber

log = logging.getLogger(__name__)


async def cancel_deliveries(subscriber: RabbitSubscriber) -> None:
    """basic.cancel the subscriber's consumer now; its `stop()` then has nothing left to cancel."""
    queue, tag = subscriber._queue_obj, subscriber._consumer_tag
    if queue is None or tag is None:
        return
    subscriber._consumer_tag = None  # so that `stop()` does not cancel it twice
    try:
        await queue.cancel(tag)
    except Exception as error:  # the broker is away: it has no consumer of ours to cancel
        log.warning("could not cancel the consumer: %r", error)
