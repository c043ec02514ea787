"""The worker process: a FastStream app that takes one job at a time and runs it on the engine.

`Worker` holds the process's state and has one method per lifecycle step and per message kind;
`create_app` registers them on the broker the way FastStream's examples register handlers.

It also reads the cancels stream from `cancel_memory_s` back and takes no job until it has read its own
`WorkerStarted` back from it: by then it knows the recent cancels, and the edge's cancel marker in
storage covers older ones, so a job cancelled while it waited in the queue ends as cancelled without
running, whichever worker takes it. Neither the replay nor what is remembered grows with history.

Faults (docs/reliability.md): the broker connection is robust; a job whose delivery is lost with the
connection runs on and its redelivery repeats its end; SIGTERM stops the consumer first, then lets the
running job finish within `stop_grace_s` or hands it back, then announces `WorkerStopped`.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated

from faststream import FastStream
from faststream.exceptions import NackMessage, RejectMessage
from faststream.middlewares import AckPolicy
from faststream.rabbit import Channel, RabbitBroker, RabbitQueue
from faststream.rabbit.annotations import RabbitMessage
from pydantic import Field, TypeAdapter, ValidationError

from contracts import (
    CancelJob,
    ControlCommand,
    JobCancelRequested,
    JobQueued,
    RefreshModels,
    ReleaseMemory,
    StopRunning,
    ToolResult,
    WorkerHeartbeat,
    WorkerStarted,
    WorkerStopped,
    read_event,
    read_message,
)
from contracts.topology import Topology
from messaging import declare, publish_event, publish_live
from storage import ObjectStore, StorageError, StorageSettings
from worker.affinity import JobConsumers
from worker.claims import ClaimLost
from worker.deadletters import dead_letter_reason, job_id_of
from worker.engine.describe import Describer
from worker.handbacks import attempt_of, publish_again
from worker.interrupts import InterruptSwitch
from worker.runner import SHUTDOWN, JobHandedBack, JobRunner
from worker.settings import WorkerSettings
from worker.tools import ToolRunner
from worker.warm_models import WorkerEngine, load_engine

log = logging.getLogger(__name__)
# Cancel requests are few; a larger prefetch replays the stream quickly at start.
CANCELS_PREFETCH = 200
CONTROL_ADAPTER: TypeAdapter[ControlCommand] = TypeAdapter(
    Annotated[ControlCommand, Field(discriminator="type")]
)


class Worker:
    """One worker process: its models, its runner, and a handler for each kind of message."""

    def __init__(self, settings: WorkerSettings, storage_settings: StorageSettings) -> None:
        self.settings = settings
        self.topology = Topology(settings.namespace, affinity_wait_s=settings.affinity_wait_s)
        # Prefetch 1: a worker holds one job; the rest wait in the queue for whoever is free.
        self.broker = RabbitBroker(
            settings.amqp_url,
            default_channel=Channel(prefetch_count=1),
            logger=log,
            log_level=logging.DEBUG,
            reconnect_interval=settings.reconnect_interval_s,
            # `leave` bounds the wait for the running job; this only has to be longer.
            graceful_timeout=settings.stop_grace_s + 60,
        )
        self.store = ObjectStore(storage_settings)
        self.interrupts = InterruptSwitch(memory_s=settings.cancel_memory_s)
        self.runner: JobRunner | None = None
        self.engine: WorkerEngine | None = None
        self.tools: ToolRunner | None = None
        self.models: list[str] = []
        self.loras: list[str] = []
        # This start's marker; reading it back from the cancels stream means every earlier cancel is known.
        self.marker = WorkerStarted(worker_id=settings.worker_id)
        self.cancels_read = asyncio.Event()
        # One job at a time even across a reconnection, when the broker redelivers the job still running
        # here: the redelivery waits, then finds the finished job's manifest and repeats its terminal event.
        self.one_job = asyncio.Lock()
        self.orphans: set[asyncio.Task[object]] = set()
        self.beating: set[asyncio.Task[None]] = set()
        self.consumers = JobConsumers(self.broker, self.topology, self.handle_job)

    async def to_log(self, event: object) -> None:
        await publish_event(self.broker, self.topology, event)  # type: ignore[arg-type]

    async def to_live(self, event: object) -> None:
        await publish_live(self.broker, self.topology, event)  # type: ignore[arg-type]

    # ---- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the models, then connect and declare the topology."""
        settings = self.settings
        self.engine, names = await asyncio.to_thread(load_engine, settings)
        self.models.extend(names)
        self.loras.extend(self.engine.loras())
        self.tools = ToolRunner(
            self.store, self.engine.folders, Describer(self.engine.folders, self.engine.placement.device)
        )
        await self.store.ensure_bucket()
        await self.broker.connect()
        await declare(self.broker, self.topology)
        self.runner = JobRunner(
            worker_id=settings.worker_id,
            engine=self.engine,
            store=self.store,
            publish_log=self.to_log,
            publish_live=self.to_live,
            interrupts=self.interrupts,
            progress_interval_s=settings.progress_interval_s,
            deadline_s=settings.job_deadline_s,
            storage_retry_s=settings.storage_retry_s,
            claim_lease_s=settings.claim_lease_s,
        )

    async def announce(self) -> None:
        """Consume the warm queue of the loaded checkpoint, then `WorkerStarted` to the log (and the
        cancels stream), then heartbeats."""
        await self.consumers.follow(self.warm_models())
        await self.to_log(self.marker.model_copy(update={"models": list(self.models)}))
        self.beating.add(asyncio.create_task(self.heartbeats()))
        log.info("worker.started %s with models %s", self.settings.worker_id, self.models)

    async def beat(self) -> None:
        await self.to_live(
            WorkerHeartbeat(
                worker_id=self.settings.worker_id,
                busy_job=self.interrupts.current_job,
                models=self.models,
                loras=self.loras,
                preset=self.settings.preset,
                warm=self.warm_models(),
                device=self.engine.placement.name if self.engine else None,
                dtype=self.engine.placement.dtype_name if self.engine else None,
                vram=self.engine.placement.vram if self.engine else None,
            )
        )

    async def heartbeats(self) -> None:
        while True:
            try:
                await self.beat()
            except Exception as error:  # the broker is away; the next beat goes out once it is back
                log.debug("heartbeat not sent: %s", error)
            await asyncio.sleep(self.settings.heartbeat_interval_s)

    async def leave(self) -> None:
        """SIGTERM: take no new job, let the running one finish within the grace, else hand it back."""
        settings = self.settings
        for task in self.beating:
            task.cancel()
        # Takes no new job at once, whatever the running one does, then waits for the running handler.
        stopping = asyncio.create_task(self.consumers.close())
        _, pending = await asyncio.wait({stopping}, timeout=settings.stop_grace_s)
        if pending and self.interrupts.trip(SHUTDOWN):
            log.info("worker.leaving: grace of %g s is over, handing the job back", settings.stop_grace_s)
        await stopping
        try:
            await self.to_log(WorkerStopped(worker_id=settings.worker_id))
        except Exception as error:  # leaving while the broker is away; edges forget a silent worker anyway
            log.warning("could not announce that this worker leaves: %r", error)
        log.info("worker.stopped %s", settings.worker_id)

    # ---- handlers --------------------------------------------------------------------------------------

    async def handle_job(self, message: RabbitMessage) -> None:
        """Run one job; acked only after its terminal event is confirmed, nacked on a transient fault."""
        try:
            job = read_message(JobQueued, message.body)
        except ValidationError as error:
            # A poison message: dead-lettered at once, where it ends as a failed job.
            log.warning("rejecting a malformed job: %s", error.errors(include_input=False)[:3])
            raise RejectMessage() from None
        attempt, delivery = attempt_of(message.raw_message.headers or {})
        await self.cancels_read.wait()
        if not self.consumers.take(job.job_id):
            # Delivered by another consumer in the instant before the pause: it goes to a free worker.
            await self.consumers.pause()
            log.info("job %s came while %s runs here: handing it back", job.job_id, self.consumers.running)
            await self._hand_back(message, attempt - 1)  # it did not run: the next try keeps the number
            return
        # A lost connection cancels this handler, but the engine thread cannot be cancelled: the job runs
        # on (holding the lock) and writes its manifest, which the redelivery then repeats.
        task = asyncio.ensure_future(self._run_alone(job, attempt, delivery))
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            self.orphans.add(task)
            task.add_done_callback(self._orphan_ended)
            raise
        except StorageError:
            # Expected: the job goes back to the queue (the runner said why), no traceback needed.
            raise NackMessage(requeue=True) from None
        except JobHandedBack:
            await self._hand_back(message, attempt)
        except ClaimLost as lost:
            # Another worker owns the job now and holds its own delivery: this one ends here, quietly.
            log.warning("%s; this run publishes nothing", lost)

    async def _hand_back(self, message: RabbitMessage, attempt: int) -> None:
        """Leaving mid-job: queue the job again as a new message, so the hand-back spends none of its
        deliveries (`worker.handbacks`); this delivery is then acked. A plain requeue if that fails."""
        try:
            await publish_again(self.broker, self.topology, message, attempt)
        except Exception as error:
            log.warning("could not queue the job again (%r): requeued, which counts a delivery", error)
            raise NackMessage(requeue=True) from None

    async def _run_alone(self, job: JobQueued, attempt: int, delivery: int) -> object:
        assert self.runner is not None
        async with self.one_job:
            await self.consumers.started(job.job_id)  # one job per worker, whichever queue it came from
            try:
                return await self.runner.run(job, attempt, delivery)
            finally:
                self.consumers.ended(self.warm_models())

    def warm_models(self) -> list[str]:
        return self.engine.warm() if self.engine is not None else []

    def _orphan_ended(self, task: asyncio.Task[object]) -> None:
        self.orphans.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning(
                "a job whose delivery was lost ended with %r; its redelivery decides", task.exception()
            )

    async def read_cancels(self, message: RabbitMessage) -> None:
        """Every cancel request, old and new: stop the job if it runs here, skip it if it comes later."""
        try:
            event = read_event(message.body)
        except ValidationError:
            log.warning("skipping a cancels-stream message this worker cannot read: %r", message.body[:200])
            return
        if isinstance(event, JobCancelRequested):
            self.interrupts.cancel(event.job_id, event.reason)
        elif isinstance(event, WorkerStarted) and event.event_id == self.marker.event_id:
            self.cancels_read.set()

    async def handle_dead(self, message: RabbitMessage) -> None:
        """A job that was rejected or ran out of deliveries ends as failed, unless it had finished."""
        job_id = job_id_of(message.body, message.raw_message.message_id)
        if job_id is None:
            log.error("dropping a dead letter that names no job: %r", message.body[:200])
            return
        code, text = dead_letter_reason(message.raw_message.headers)
        assert self.runner is not None
        await self.runner.fail(job_id, code, text)

    async def handle_control(self, message: RabbitMessage) -> None:
        """Stop and cancel the running job; rescan the model folders; release memory."""
        try:
            command = CONTROL_ADAPTER.validate_json(message.body, extra="ignore")
        except ValidationError:
            log.warning("skipping a control command this worker cannot read: %r", message.body[:200])
            return
        engine = self.engine
        match command:
            case StopRunning():
                self.interrupts.trip("stopped")
            case CancelJob(job_id=job_id):
                self.interrupts.cancel(job_id, "cancelled")
            case RefreshModels() if engine is not None:
                found = await asyncio.to_thread(engine.scan)
                self.models[:] = engine.checkpoints()
                self.loras[:] = found["loras"]
                log.info("worker.refreshed models %s", {name: len(names) for name, names in found.items()})
                await self.beat()  # answer at once, not at the next periodic beat
            case ReleaseMemory() if engine is not None:
                await asyncio.to_thread(engine.release)
                if self.tools is not None:
                    self.tools.describer.release()
                self.consumers.settle_soon([])  # no checkpoint is loaded: leave the warm queues
                log.info("worker.released memory; models reload on the next job")

    async def handle_tool(self, message: RabbitMessage) -> ToolResult:
        """Describe or mask; the returned `ToolResult` goes to the request's reply-to."""
        assert self.tools is not None
        return await self.tools.answer(message.body)


def create_app(settings: WorkerSettings, storage_settings: StorageSettings) -> FastStream:
    """Build the worker app; nothing connects or loads until it starts."""
    worker = Worker(settings, storage_settings)
    broker, topology = worker.broker, worker.topology
    app = FastStream(broker, logger=log)
    app.on_startup(worker.start)
    app.after_startup(worker.announce)
    app.on_shutdown(worker.leave)
    broker.subscriber(
        topology.cancels,
        channel=Channel(prefetch_count=CANCELS_PREFETCH),
        consume_args={"x-stream-offset": datetime.now(UTC) - timedelta(seconds=settings.cancel_memory_s)},
        ack_policy=AckPolicy.ACK,
    )(worker.read_cancels)
    broker.subscriber(topology.dead, topology.dead_letters, ack_policy=AckPolicy.NACK_ON_ERROR)(
        worker.handle_dead
    )
    control = RabbitQueue(f"{topology.control.name}.{settings.worker_id}", exclusive=True, auto_delete=True)
    broker.subscriber(control, topology.control, ack_policy=AckPolicy.ACK_FIRST)(worker.handle_control)
    broker.subscriber(topology.tools, ack_policy=AckPolicy.ACK_FIRST)(worker.handle_tool)
    return app
