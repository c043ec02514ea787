"""Model-affinity routing, the worker's side: it consumes the warm queue of every checkpoint it has
loaded besides the shared work queue (`contracts.topology`), so jobs for its loaded models come to it
first and a fleet with several checkpoints does not reload them job after job.

Each consumer has a prefetch of one, and quorum queues have no channel-wide prefetch, so a worker with
several consumers could hold several jobs while it runs one. It pauses every consumer while a job runs
instead and resumes them after; a job delivered in the instant before the pause is handed back at once
(`Worker.handle_job`). After a job the warm queues follow what is loaded now; they resume first and the
shared queue a moment later, so a waiting job for a loaded model goes before a job from the shared queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from faststream.middlewares import AckPolicy
from faststream.rabbit import RabbitBroker, RabbitExchange, RabbitQueue
from faststream.rabbit.annotations import RabbitMessage
from faststream.rabbit.subscriber import RabbitSubscriber

from contracts.topology import Topology, checkpoint_key
from worker.consumers import cancel_deliveries, resume_deliveries

log = logging.getLogger(__name__)

Handler = Callable[[RabbitMessage], Awaitable[None]]
# Time the warm queues have to deliver a waiting job before the shared queue resumes too.
WARM_FIRST_S = 0.1
RESUME_RETRY_S = 1.0


class JobConsumers:
    """The worker's job subscribers: `shared` (registered before the broker starts) and one per warm
    checkpoint, added and stopped as checkpoints are loaded and dropped."""

    def __init__(self, broker: RabbitBroker, topology: Topology, handler: Handler) -> None:
        self.broker = broker
        self.topology = topology
        self.handler = handler
        self.shared = self._subscriber(topology.work, topology.jobs_any, persistent=True)
        self.warm: dict[str, RabbitSubscriber] = {}
        self.running: str | None = None  # the job this worker runs or is about to run
        self.paused = False
        self.closed = False
        self._settling = asyncio.Lock()
        self._settles: set[asyncio.Task[None]] = set()

    def _subscriber(
        self, queue: RabbitQueue, exchange: RabbitExchange, *, persistent: bool = False
    ) -> RabbitSubscriber:
        subscriber = self.broker.subscriber(
            queue,
            exchange,
            ack_policy=AckPolicy.NACK_ON_ERROR,
            persistent=persistent,
        )
        subscriber(self.handler)
        return subscriber

    @property
    def all(self) -> list[RabbitSubscriber]:
        return [*self.warm.values(), self.shared]

    def take(self, job_id: str) -> bool:
        """Claim the worker for `job_id`; False when another job runs (a redelivery of the running job
        itself waits for it instead: `Worker.one_job`)."""
        if self.running not in (None, job_id):
            return False
        self.running = job_id
        return True

    async def started(self, job_id: str) -> None:
        self.running = job_id
        await self.pause()

    def ended(self, warm: Iterable[str]) -> None:
        """The job is over: follow what is loaded now and take jobs again."""
        self.running = None
        self.settle_soon(warm)

    def settle_soon(self, warm: Iterable[str]) -> None:
        """`settle` in a task of its own, since a warm queue that is left waits for its subscriber's
        handler, which may be the caller; while a job runs it only follows (a release mid-job)."""
        task = asyncio.create_task(self.settle(list(warm), busy=lambda: self.running is not None))
        self._settles.add(task)
        task.add_done_callback(self._settles.discard)

    async def pause(self) -> None:
        """Stop every delivery while a job runs; the running job's own delivery stays unacked."""
        self.paused = True
        await asyncio.gather(*(cancel_deliveries(subscriber) for subscriber in self.all))

    async def settle(self, checkpoints: Iterable[str], busy: Callable[[], bool]) -> None:
        """After a job (or a release): follow what is loaded now, then resume unless busy again."""
        async with self._settling:
            if self.closed:
                return
            await self.follow(checkpoints)
            await self.resume(busy)

    async def follow(self, checkpoints: Iterable[str]) -> None:
        """Consume the warm queues of exactly `checkpoints` (paused ones start paused)."""
        wanted = {checkpoint_key(name) for name in checkpoints}
        for key in set(self.warm) - wanted:
            await self.warm.pop(key).stop()
            log.info("worker.affinity: no longer loaded, left the warm queue of %s", key)
        for key in sorted(wanted - set(self.warm)):
            subscriber = self._subscriber(self.topology.warm(key), self.topology.jobs)
            try:
                await subscriber.start()
            except Exception as error:  # e.g. declared elsewhere with another affinity wait
                log.warning("worker.affinity: cannot consume the warm queue of %s: %r", key, error)
                continue
            self.warm[key] = subscriber
            if self.paused:
                await cancel_deliveries(subscriber)
            log.info("worker.affinity: takes jobs for %s first", key)

    async def resume(self, busy: Callable[[], bool]) -> None:
        """Deliveries again after a job: the warm queues first, the shared one unless a job came."""
        if self.closed or busy():
            return
        self.paused = False
        await asyncio.gather(*(self._resume(subscriber, busy) for subscriber in self.warm.values()))
        await asyncio.sleep(WARM_FIRST_S if self.warm else 0)
        await self._resume(self.shared, busy)

    async def _resume(self, subscriber: RabbitSubscriber, busy: Callable[[], bool]) -> None:
        # With the broker away, consuming fails: try again until it is back, unless a job came meanwhile.
        while not (busy() or self.paused or self.closed):
            try:
                await resume_deliveries(subscriber)
                return
            except Exception as error:
                log.warning("worker.affinity: cannot consume yet (%r), trying again", error)
                await asyncio.sleep(RESUME_RETRY_S)

    async def close(self) -> None:
        """Take no job any more (SIGTERM), then wait for the running handler, whichever queue it came
        from: every consumer is cancelled first, so nothing is delivered while it runs."""
        self.closed = True
        await self.pause()
        await asyncio.gather(*(subscriber.stop() for subscriber in self.all))
