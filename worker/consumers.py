"""Pausing and resuming a FastStream subscriber's deliveries at once, which FastStream 0.7 has no public
call for.

`RabbitSubscriber.stop()` cancels its consumer only after the running handler returns, and a stopped
subscriber is started again only by redeclaring its queue. A worker needs both sooner: on SIGTERM it
must stop taking jobs first (a job handed back meanwhile would be redelivered to this very consumer,
dropped, and cost a delivery attempt), and while one job runs it pauses its other job consumers
(`worker.affinity`). So this reaches into the subscriber's aio-pika queue and consumer tag, the one place
in the worker that uses FastStream's private attributes; `tests/worker/test_consumers.py` fails when
FastStream renames them.
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
    try:
        await queue.cancel(tag)
    except Exception as error:
        # The broker is away; the robust queue still holds the consumer and brings it back with the
        # connection, so the tag stays: the next cancel (or `stop()`) removes it then.
        log.warning("could not cancel the consumer: %r", error)
        return
    subscriber._consumer_tag = None  # so that `stop()` does not cancel it twice


async def resume_deliveries(subscriber: RabbitSubscriber) -> None:
    """basic.consume again after `cancel_deliveries`, into the subscriber's own handling. Job consumers
    ack after their handler (no `no_ack`), which is what this consumes with."""
    queue = subscriber._queue_obj
    if queue is None or subscriber._consumer_tag is not None:
        return  # stopped, or consuming already
    subscriber._consumer_tag = await queue.consume(
        subscriber.consume,  # type: ignore[arg-type]
        no_ack=False,
        arguments=subscriber.consume_args,
    )
