"""Handing a job back without spending its deliveries: a worker that leaves mid-job (SIGTERM) publishes
the job again to the work queue, confirmed, then acks the delivery it had.

The work queue's delivery limit (`x-delivery-limit`) counts every return of a message, so a plain
requeue would let a rolling restart of the fleet dead-letter a long job that never failed. A fresh
message starts at delivery count 0 instead; it carries how many attempts came before it
(`ATTEMPTS_BEFORE`), so the attempt number, which orders the job's events (`job_seq`), keeps rising.
What still counts against the limit is what may be the job's own fault: a worker that died or lost its
connection mid-job, and storage faults.

If the worker dies between the confirm and the ack, the job is queued twice; the second copy finds the
first one's manifest and repeats its terminal event (`worker.runner`), unless both run at once.
"""

from __future__ import annotations

from typing import Any

from faststream.rabbit import RabbitBroker
from faststream.rabbit.annotations import RabbitMessage

from contracts.topology import Topology

ATTEMPTS_BEFORE = "x-fleet-attempts-before"
DELIVERY_COUNT = "x-delivery-count"


def attempt_of(headers: dict[str, Any]) -> tuple[int, int]:
    """(attempt, delivery): the job's attempt number, counting hand-backs, and this message's delivery
    number, which the delivery limit bounds. Both start at 1."""
    delivery = int(headers.get(DELIVERY_COUNT) or 0) + 1
    return int(headers.get(ATTEMPTS_BEFORE) or 0) + delivery, delivery


async def publish_again(
    broker: RabbitBroker, topology: Topology, message: RabbitMessage, attempt: int
) -> None:
    """The job of `message` as a new message at the back of the work queue, after `attempt` attempts."""
    raw = message.raw_message
    headers = {k: v for k, v in (raw.headers or {}).items() if k != DELIVERY_COUNT}
    await broker.publish(
        message.body,
        queue=topology.work.name,  # the default exchange: not to the log again
        headers={**headers, ATTEMPTS_BEFORE: attempt},
        message_id=raw.message_id,
        content_type=raw.content_type,
        persist=True,
        mandatory=True,
    )
