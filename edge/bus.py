"""The edge's side of RabbitMQ: publishing jobs and stops, folding the log and live updates."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from faststream.middlewares import AckPolicy
from faststream.rabbit import Channel, RabbitBroker, RabbitQueue
from faststream.rabbit.annotations import RabbitMessage
from pydantic import ValidationError

from contracts import (
    ControlCommand,
    EdgeStarted,
    JobCancelled,
    JobDeleted,
    JobFailed,
    JobProgressed,
    JobQueued,
    JobStarted,
    JobSucceeded,
    StopRunning,
    ToolRequest,
    ToolResult,
    WorkerHeartbeat,
    WorkerStarted,
    WorkerStopped,
    parse_event,
)
from contracts.topology import Topology, declare, publish_event
from edge.projections.store import ProjectionStore
from edge.projections.workers import WorkerRoster

log = logging.getLogger(__name__)

JOB_EVENTS = (JobQueued, JobStarted, JobProgressed, JobSucceeded, JobFailed, JobCancelled, JobDeleted)
WORKER_EVENTS = (WorkerStarted, WorkerHeartbeat, WorkerStopped)
OnTerminal = Callable[[JobSucceeded | JobFailed | JobCancelled], Awaitable[None]]
# Streams need a prefetch; a large one replays a long log quickly at start.
LOG_PREFETCH = 500


class EdgeBus:
    """Owns the broker connection of one edge process."""

    def __init__(
        self,
        amqp_url: str,
        topology: Topology,
        edge_id: str,
        projections: ProjectionStore,
        workers: WorkerRoster | None = None,
    ) -> None:
        self.topology = topology
        self.edge_id = edge_id
        self.projections = projections
        self.workers = workers
        self.broker = RabbitBroker(
            amqp_url,
            default_channel=Channel(prefetch_count=LOG_PREFETCH),
            logger=log,
            # Per-message service lines would flood the log: every event passes here.
            log_level=logging.DEBUG,
        )
        self.caught_up = asyncio.Event()
        self._on_terminal: OnTerminal | None = None
        self._subscribe()

    def _subscribe(self) -> None:
        topology = self.topology

        @self.broker.subscriber(
            topology.log,
            topology.events,
            consume_args={"x-stream-offset": "first"},
            ack_policy=AckPolicy.ACK,
        )
        async def fold_log(message: RabbitMessage) -> None:
            """Every edge reads the whole log from its first offset into its projection."""
            await self._fold(message.body)

        live = RabbitQueue(
            f"{topology.live.name}.{self.edge_id}", exclusive=True, auto_delete=True, routing_key="#"
        )

        @self.broker.subscriber(live, topology.live, ack_policy=AckPolicy.ACK_FIRST)
        async def fold_live(message: RabbitMessage) -> None:
            await self._fold(message.body)

        @self.broker.subscriber(topology.webhooks, topology.events, ack_policy=AckPolicy.NACK_ON_ERROR)
        async def deliver(message: RabbitMessage) -> None:
            """Terminal events, shared among edges: whichever edge takes one sends its webhook."""
            event = parse_event(message.body)
            if self._on_terminal is not None and isinstance(event, JobSucceeded | JobFailed | JobCancelled):
                await self._on_terminal(event)

    async def _fold(self, body: bytes) -> None:
        try:
            event = parse_event(body)
        except ValidationError:
            log.warning("skipping an event this edge cannot read: %r", body[:200])
            return
        if isinstance(event, JOB_EVENTS):
            await self.projections.apply(event)
        elif isinstance(event, WORKER_EVENTS):
            if self.workers is not None:
                await self.workers.apply(event)
        elif isinstance(event, EdgeStarted) and event.edge_id == self.edge_id:
            self.caught_up.set()

    def on_terminal(self, handler: OnTerminal) -> None:
        self._on_terminal = handler

    async def start(self, catch_up_timeout_s: float) -> None:
        """Connect, declare the topology, and replay the log up to this edge's own start marker."""
        await self.broker.connect()
        await declare(self.broker, self.topology)
        await self.broker.start()
        await publish_event(self.broker, self.topology, EdgeStarted(edge_id=self.edge_id))
        await asyncio.wait_for(self.caught_up.wait(), catch_up_timeout_s)

    async def submit(self, job: JobQueued) -> None:
        """One confirmed publish puts the job in the log and in the work queue."""
        await publish_event(self.broker, self.topology, job)

    async def stop_running(self) -> None:
        await self.command(StopRunning())

    async def command(self, command: ControlCommand) -> None:
        """Fan a command out to every worker."""
        await self.broker.publish(command, exchange=self.topology.control, persist=False)

    async def delete_job(self, job_id: str) -> None:
        """Log the deletion, so every edge (and every restart) drops the job; fold it here at once."""
        event = JobDeleted(job_id=job_id, seq=0)
        await publish_event(self.broker, self.topology, event)
        await self.projections.apply(event)

    async def tool(self, request: ToolRequest, timeout_s: float) -> ToolResult:
        """Ask any worker to run a tool and wait for its reply; `TimeoutError` when none answers.

        The request expires with the wait, so a worker that comes later does not run it for nobody.
        """
        reply = await self.broker.request(
            request,
            queue=self.topology.tools,
            timeout=timeout_s,
            expiration=timeout_s,
            message_id=str(request.event_id),
        )
        return ToolResult.model_validate_json(reply.body)

    async def close(self) -> None:
        await self.broker.stop()
