"""The edge's side of RabbitMQ: publishing jobs, stops and cancels, folding the log and live updates,
and taking webhook deliveries (terminal events and due retries) from the queue the edges share.

Broker restarts: aio-pika's robust connections reconnect and re-subscribe by themselves. The log reader
(`edge.logreader`) resumes after the last offset committed to the read model, so neither a reconnection
nor a restart replays the whole log, and nothing written meanwhile is missed. While the broker is away,
a publish fails at once with `BusUnavailable` (the API answers 503): a job is accepted only once its
publish is confirmed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated

from aiormq.exceptions import AMQPError, ChannelInvalidStateError
from faststream.middlewares import AckPolicy
from faststream.rabbit import Channel, RabbitBroker, RabbitQueue
from faststream.rabbit.annotations import RabbitMessage
from pydantic import Field, TypeAdapter, ValidationError

from contracts import (
    ControlCommand,
    DeliverWebhook,
    EdgeStarted,
    FleetEvent,
    JobCancelled,
    JobCancelRequested,
    JobDeleted,
    JobFailed,
    JobProgressed,
    JobQueued,
    JobSucceeded,
    StopRunning,
    ToolRequest,
    ToolResult,
    WebhookAttempted,
    WorkerHeartbeat,
    WorkerStarted,
    WorkerStopped,
    read_event,
    read_message,
)
from contracts.topology import Topology
from edge.logreader import LogReader
from edge.readmodel import ReadModel
from edge.readmodel.batches import LogFolder
from edge.workers import WorkerRoster
from messaging import declare, publish_event

log = logging.getLogger(__name__)

WORKER_EVENTS = (WorkerStarted, WorkerHeartbeat, WorkerStopped)
WebhookMessage = JobSucceeded | JobFailed | JobCancelled | DeliverWebhook
OnWebhook = Callable[[WebhookMessage], Awaitable[object]]
WEBHOOK_ADAPTER: TypeAdapter[WebhookMessage] = TypeAdapter(
    Annotated[WebhookMessage, Field(discriminator="type")]
)
# A webhook message that could not be handled (broker hiccup) goes back to the queue after a pause.
WEBHOOK_REQUEUE_PAUSE_S = 1.0


class BusUnavailable(ConnectionError):
    """The broker did not confirm a publish (it is away, or reconnecting): nothing was accepted."""


class EdgeBus:
    """Owns the broker connection of one edge process."""

    def __init__(
        self,
        amqp_url: str,
        topology: Topology,
        edge_id: str,
        model: ReadModel,
        workers: WorkerRoster | None = None,
        webhook_concurrency: int = 16,
        *,
        reconnect_interval_s: float = 2.0,
        publish_timeout_s: float = 10.0,
    ) -> None:
        self.topology = topology
        self.edge_id = edge_id
        self.model = model
        self.workers = workers
        self.publish_timeout_s = publish_timeout_s
        self.folder = LogFolder(model, self._after_commit, taken=self._taken)
        self.reader = LogReader(amqp_url, topology, self.folder, reconnect_interval_s)
        self.broker = RabbitBroker(
            amqp_url,
            logger=log,
            # Per-message service lines would flood the log: every live update passes here.
            log_level=logging.DEBUG,
            reconnect_interval=reconnect_interval_s,
        )
        self.webhook_concurrency = webhook_concurrency
        self._on_webhook: OnWebhook | None = None
        self._webhook_tasks: set[asyncio.Task[None]] = set()
        self._subscribe()

    def _subscribe(self) -> None:
        topology = self.topology

        live = RabbitQueue(
            f"{topology.live.name}.{self.edge_id}", exclusive=True, auto_delete=True, routing_key="#"
        )

        @self.broker.subscriber(live, topology.live, ack_policy=AckPolicy.ACK_FIRST)
        async def fold_live(message: RabbitMessage) -> None:
            """Step progress and heartbeats: kept in memory, never in the read model's database."""
            try:
                event = read_event(message.body)
            except ValidationError:
                log.warning("skipping a live update this edge cannot read: %r", message.body[:200])
                return
            if isinstance(event, JobProgressed):
                self.model.live.step(event)
            elif isinstance(event, WORKER_EVENTS) and self.workers is not None:
                await self.workers.apply(event)

        # Its own channel: the prefetch bounds how many attempts run at once, so one slow receiver
        # does not hold up the others.
        @self.broker.subscriber(
            topology.webhooks,
            channel=Channel(prefetch_count=self.webhook_concurrency),
            ack_policy=AckPolicy.MANUAL,
        )
        async def deliver(message: RabbitMessage) -> None:
            """Terminal events and due retries, shared among edges: whichever edge takes one tries it."""
            task = asyncio.create_task(self._deliver(message))
            self._webhook_tasks.add(task)
            task.add_done_callback(self._webhook_tasks.discard)

    async def _deliver(self, message: RabbitMessage) -> None:
        """Acked once the attempt is recorded (and any retry scheduled); requeued if that failed."""
        try:
            order = _webhook_message(message.body)
            if order is not None and self._on_webhook is not None:
                await self._on_webhook(order)
        except Exception:
            log.exception("webhook message could not be handled; it goes back to the queue")
            await asyncio.sleep(WEBHOOK_REQUEUE_PAUSE_S)
            await message.nack(requeue=True)
            return
        await message.ack()

    async def _taken(self) -> None:
        await self.reader.release()

    async def _after_commit(self, position: int, others: list[FleetEvent]) -> None:
        """A reconnection resumes after the committed position; then the log events the read model
        does not keep, now that everything before them is committed."""
        self.reader.committed(position)
        for event in others:
            if isinstance(event, WORKER_EVENTS):
                if self.workers is not None:
                    await self.workers.apply(event)
            elif isinstance(event, EdgeStarted) and event.edge_id == self.edge_id:
                self.model.current.set()

    @property
    def log_offset(self) -> int | str:
        """Where the log consumer resumes after a reconnection."""
        return self.reader.offset

    def on_webhook(self, handler: OnWebhook) -> None:
        self._on_webhook = handler

    async def start(self) -> None:
        """Connect, declare the topology, and start folding the log from the read model's stored position
        (a new read model starts at the log's first offset). The read model is `current` once this
        edge's own start marker, published last here, comes back folded."""
        self.folder.position = await self.model.position()
        await self.broker.connect()
        await declare(self.broker, self.topology)
        await self.broker.start()
        await self.reader.start(self.folder.position)
        await publish_event(self.broker, self.topology, EdgeStarted(edge_id=self.edge_id))

    async def submit(self, job: JobQueued) -> None:
        """One confirmed publish puts the job in the log and in the work queue.

        Raises `BusUnavailable` when the broker does not confirm within `publish_timeout_s`.
        """
        await self._publish(job)

    async def cancel(self, job_id: str) -> None:
        """Log a cancel request: every worker reads it (see `Topology.cancels`); fold it here at once."""
        event = JobCancelRequested(job_id=job_id, seq=0)
        await self._publish(event)
        await self.model.apply(event)

    async def _publish(self, event: JobQueued | JobCancelRequested) -> None:
        try:
            await asyncio.wait_for(publish_event(self.broker, self.topology, event), self.publish_timeout_s)
        except (AMQPError, ChannelInvalidStateError, ConnectionError, TimeoutError) as error:
            raise BusUnavailable(
                f"the broker did not confirm {event.type} of {event.job_id}: {error!r}"
            ) from error

    async def record(self, event: WebhookAttempted) -> None:
        """A webhook attempt goes to the log (the job's delivery log); fold it here at once."""
        await publish_event(self.broker, self.topology, event)
        await self.model.fold([event])

    async def schedule(self, order: DeliverWebhook, delay_s: float) -> None:
        """Park a retry in the delay queue of `delay_s`; it expires back into the webhooks queue."""
        queue = self.topology.webhook_delay(delay_s)
        # A real declare each time (FastStream caches queues): it recreates an expired delay queue and
        # restarts its idle timer, so it outlives every message put in it.
        await (await self.broker.declare_queue(queue)).declare()
        await self.broker.publish(
            order,
            queue=queue,
            persist=True,
            mandatory=True,
            message_id=order.webhook_id,
        )

    async def stop_running(self) -> None:
        await self.command(StopRunning())

    async def command(self, command: ControlCommand) -> None:
        """Fan a command out to every worker."""
        await self.broker.publish(command, exchange=self.topology.control, persist=False)

    async def delete_job(self, job_id: str) -> None:
        """Log the deletion, so every edge (and every restart) drops the job; fold it here at once."""
        event = JobDeleted(job_id=job_id, seq=0)
        await publish_event(self.broker, self.topology, event)
        await self.model.apply(event)

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
        return read_message(ToolResult, reply.body)

    async def close(self) -> None:
        # Unfinished attempts are dropped unacked: the broker hands their messages out again.
        for task in list(self._webhook_tasks):
            task.cancel()
        await self.reader.close()
        await self.broker.stop()
        await self.folder.close()


def _webhook_message(body: bytes) -> WebhookMessage | None:
    """A due retry or a terminal event; anything else is dropped with a warning."""
    try:
        return WEBHOOK_ADAPTER.validate_json(body, extra="ignore")
    except ValidationError:
        log.warning("dropping a webhook message this edge cannot read: %r", body[:200])
        return None
