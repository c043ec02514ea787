"""The broker I/O that edge and workers share: declaring the topology and publishing events to it.

Kept out of `contracts/`, which holds only the messages and the names they travel under.
"""

from __future__ import annotations

from faststream.rabbit import RabbitBroker
from pydantic import BaseModel

from contracts import JobQueued
from contracts.topology import CANCEL_REQUESTED, QUEUED, TERMINAL_KEYS, WORKER_STARTED, Topology


async def declare(broker: RabbitBroker, topology: Topology) -> None:
    """Declare and bind the durable part, so no publish can be unroutable whoever starts first."""
    events = await broker.declare_exchange(topology.events)
    dead_letters = await broker.declare_exchange(topology.dead_letters)
    await broker.declare_exchange(topology.live)
    await broker.declare_exchange(topology.control)
    log = await broker.declare_queue(topology.log)
    await log.bind(events, routing_key="#")
    jobs_any = await broker.declare_exchange(topology.jobs_any)
    jobs = await broker.declare_exchange(topology.jobs)
    await jobs.bind(events, routing_key=QUEUED)
    work = await broker.declare_queue(topology.work)
    await work.bind(jobs_any, routing_key="")
    # Before model-affinity routing the work queue took jobs straight from the events exchange; a
    # namespace upgraded in place would queue each job twice with that binding left.
    await work.unbind(events, routing_key=QUEUED)
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
    """Publish a lifecycle fact to the log, persistent and confirmed; the routing key is its `type`.
    A queued job also carries its checkpoint, which the jobs exchange routes on."""
    headers = topology.job_headers(event.params.base_model_name) if isinstance(event, JobQueued) else None
    await broker.publish(
        event,
        exchange=topology.events,
        routing_key=event.type,  # type: ignore[attr-defined]
        headers=headers,
        persist=True,
        mandatory=True,
        message_id=str(getattr(event, "job_id", "") or event.event_id),  # type: ignore[attr-defined]
    )


async def publish_live(broker: RabbitBroker, topology: Topology, event: BaseModel) -> None:
    """Publish a transient update (progress, heartbeat); losing it is harmless."""
    await broker.publish(event, exchange=topology.live, routing_key=event.type, mandatory=False)  # type: ignore[attr-defined]
