"""The broker I/O that edge and workers share: declaring the topology and publishing events to it.

Kept out of `contracts/`, which holds only the messages and the names they travel under.
"""

from __future__ import annotations

from faststream.rabbit import RabbitBroker
from pydantic import BaseModel

from contracts.topology import CANCEL_REQUESTED, QUEUED, TERMINAL_KEYS, WORKER_STARTED, Topology


async def declare(broker: RabbitBroker, topology: Topology) -> None:
    """Declare and bind the durable part, so no publish can be unroutable whoever starts first."""
    events = await broker.declare_exchange(topology.events)
    dead_letters = await broker.declare_exchange(topology.dead_letters)
    await broker.declare_exchange(topology.live)
    await broker.declare_exchange(topology.control)
    log = await broker.declare_queue(topology.log)
    await log.bind(events, routing_key="#")
    work = await broker.declare_queue(topology.work)
    await work.bind(events, routing_key=QUEUED)
    dead = await broker.declare_queue(topology.dead)
    await dead.bind(dead_letters, routing_key="")
    await broker.declare_queue(topology.tools)
    cancels = await broker.declare_queue(topology.cancels)
    for key in (CANCEL_REQUESTED, WORKER_STARTED):
        await cancels.bind(events, routing_key=key)
    webhooks = await broker.declare_queue(topology.webhooks)
    for key in TERMINAL_KEYS:
        await webhooks.bind(events, routing_key=key)
    await webhooks.bind(await broker.declare_exchange(topology.webhook_retry), routing_key="")


async def publish_event(broker: RabbitBroker, topology: Topology, event: BaseModel) -> None:
    """Publish a lifecycle fact to the log, persistent and confirmed; the routing key is its `type`."""
    await broker.publish(
        event,
        exchange=topology.events,
        routing_key=event.type,  # type: ignore[attr-defined]
        persist=True,
        mandatory=True,
        message_id=str(getattr(event, "job_id", "") or event.event_id),  # type: ignore[attr-defined]
    )


async def publish_live(broker: RabbitBroker, topology: Topology, event: BaseModel) -> None:
    """Publish a transient update (progress, heartbeat); losing it is harmless."""
    await broker.publish(event, exchange=topology.live, routing_key=event.type, mandatory=False)  # type: ignore[attr-defined]
