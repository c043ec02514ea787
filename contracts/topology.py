"""Every exchange and queue of the fleet, named once; edge and workers both use these objects (and
`messaging.broker` declares them and publishes to them).

One publish of `JobQueued` to the events exchange lands in both the durable log (the stream every
edge folds into projections) and a queue the workers consume, so accepting a job is a single
confirmed write: there is no window where a job is logged but never queued, or queued but not logged.

Which queue is model-affinity routing: the events exchange passes jobs to the jobs exchange, which routes
on the job's checkpoint header to the warm queue of that checkpoint, one per checkpoint some worker holds
loaded (declared by those workers). A job no warm queue takes goes to the exchange's alternate, the shared
work queue every worker consumes; a job left in a warm queue for `affinity_wait_s` (its warm workers
are busy) expires into the shared queue too, so affinity never strands a job.

Cancel requests also land in a small stream of their own that every worker replays from its first
offset, so a worker that starts after a cancel still knows the job is cancelled when it dequeues it.
Webhook retries wait in per-delay queues whose messages expire back into the webhooks queue, so a
scheduled retry survives any edge restart.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from faststream.rabbit import ExchangeType, QueueType, RabbitExchange, RabbitQueue

DELIVERY_LIMIT = 3
# RabbitMQ takes an unacked job back after this long (default 30 min); every job deadline stays below it.
# Honoured per queue from RabbitMQ 3.12; older servers ignore the argument and need the server setting
# `consumer_timeout` (docs/reliability.md).
CONSUMER_TIMEOUT_MS = 2 * 3600 * 1000
QUEUED = "job.queued"
CANCEL_REQUESTED = "job.cancel_requested"
WORKER_STARTED = "worker.started"
TERMINAL_KEYS = ("job.succeeded", "job.failed", "job.cancelled")
CANCELS_MAX_BYTES = 256 * 1024**2
# The header the jobs exchange routes on; RabbitMQ's headers exchange ignores `x-` headers.
CHECKPOINT_HEADER = "fleet-checkpoint"
# A warm queue nobody consumed for this long goes away (its jobs have long expired into the shared one).
WARM_QUEUE_EXPIRES_MS = 10 * 60 * 1000


def checkpoint_key(name: str) -> str:
    """One spelling per checkpoint: Fooocus-API clients name a file with or without `.safetensors`."""
    return name.removesuffix(".safetensors")


@dataclass(frozen=True)
class Topology:
    """Names and arguments under one namespace (tests use a fresh namespace per run)."""

    namespace: str = "fleet"
    log_max_age: str = "30D"
    log_max_bytes: int = 5 * 1024**3
    # How long a job waits for a worker that has its checkpoint loaded before any worker may take it:
    # a checkpoint load costs far more on a GPU (SDXL: 5 to 20 s) than this wait.
    affinity_wait_s: float = 10.0

    @property
    def events(self) -> RabbitExchange:
        """Topic exchange for lifecycle facts; the routing key is the event's `type`."""
        return RabbitExchange(f"{self.namespace}.events", type=ExchangeType.TOPIC, durable=True)

    @property
    def live(self) -> RabbitExchange:
        """Transient topic exchange for progress and heartbeats."""
        return RabbitExchange(f"{self.namespace}.live", type=ExchangeType.TOPIC, durable=False)

    @property
    def control(self) -> RabbitExchange:
        """Fanout to every worker: global stop, cancel, refresh."""
        return RabbitExchange(f"{self.namespace}.control", type=ExchangeType.FANOUT, durable=True)

    @property
    def dead_letters(self) -> RabbitExchange:
        return RabbitExchange(f"{self.namespace}.dlx", type=ExchangeType.FANOUT, durable=True)

    @property
    def log(self) -> RabbitQueue:
        """The event log: a stream that every edge replays from its first offset."""
        return RabbitQueue(
            f"{self.namespace}.log",
            queue_type=QueueType.STREAM,
            arguments={"x-max-age": self.log_max_age, "x-max-length-bytes": self.log_max_bytes},
            routing_key="#",
        )

    @property
    def jobs(self) -> RabbitExchange:
        """Routes each queued job to the warm queue of its checkpoint (`CHECKPOINT_HEADER`), or, when
        no worker has it loaded, to its alternate exchange `jobs_any`. Fed by the events exchange."""
        return RabbitExchange(
            f"{self.namespace}.jobs",
            type=ExchangeType.HEADERS,
            durable=True,
            arguments={"alternate-exchange": self.jobs_any.name},
        )

    @property
    def jobs_any(self) -> RabbitExchange:
        """Jobs for any worker: those of no warm checkpoint, and those that waited out their affinity."""
        return RabbitExchange(f"{self.namespace}.jobs.any", type=ExchangeType.FANOUT, durable=True)

    @property
    def work(self) -> RabbitQueue:
        """The shared queue of jobs for any worker: quorum, bounded redelivery, poison and exhausted
        jobs dead-lettered."""
        return RabbitQueue(
            f"{self.namespace}.generate",
            queue_type=QueueType.QUORUM,
            arguments={
                "x-delivery-limit": DELIVERY_LIMIT,
                "x-dead-letter-exchange": self.dead_letters.name,
                "x-consumer-timeout": CONSUMER_TIMEOUT_MS,
            },
        )

    def warm(self, checkpoint: str) -> RabbitQueue:
        """Jobs for `checkpoint`, consumed by the workers that have it loaded. A job waits here at most
        `affinity_wait_s`, then expires into the shared queue (at-least-once, so no expiry is lost);
        one that exhausts its deliveries here goes there too, where the delivery limit dead-letters it."""
        key = checkpoint_key(checkpoint)
        # The name must be short and plain whatever the file name; the binding carries the name itself.
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        return RabbitQueue(
            f"{self.namespace}.generate.warm.{digest}",
            queue_type=QueueType.QUORUM,
            arguments={
                "x-message-ttl": max(1, round(self.affinity_wait_s * 1000)),
                "x-delivery-limit": DELIVERY_LIMIT,
                "x-dead-letter-exchange": self.jobs_any.name,
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",  # what at-least-once dead-lettering requires
                "x-expires": WARM_QUEUE_EXPIRES_MS,
                "x-consumer-timeout": CONSUMER_TIMEOUT_MS,
            },
            bind_arguments={"x-match": "all", CHECKPOINT_HEADER: key},
        )

    @staticmethod
    def job_headers(checkpoint: str) -> dict[str, str]:
        """The headers of a queued job that asks for `checkpoint`, for the jobs exchange."""
        return {CHECKPOINT_HEADER: checkpoint_key(checkpoint)}

    @property
    def dead(self) -> RabbitQueue:
        """Jobs that were rejected or hit the delivery limit; each ends as `JobFailed`."""
        return RabbitQueue(f"{self.namespace}.generate.dead", queue_type=QueueType.QUORUM)

    @property
    def webhooks(self) -> RabbitQueue:
        """Terminal events to deliver; edges compete, so each is delivered by one edge."""
        return RabbitQueue(f"{self.namespace}.webhooks", queue_type=QueueType.QUORUM)

    @property
    def cancels(self) -> RabbitQueue:
        """Cancel requests (and workers' start markers, to know when a replay has caught up)."""
        return RabbitQueue(
            f"{self.namespace}.cancels",
            queue_type=QueueType.STREAM,
            arguments={"x-max-age": self.log_max_age, "x-max-length-bytes": CANCELS_MAX_BYTES},
            routing_key=CANCEL_REQUESTED,
        )

    @property
    def webhook_retry(self) -> RabbitExchange:
        """Where expired retries dead-letter to; it feeds the webhooks queue."""
        return RabbitExchange(f"{self.namespace}.webhooks.retry", type=ExchangeType.FANOUT, durable=True)

    def webhook_delay(self, delay_s: float) -> RabbitQueue:
        """A retry waits here for `delay_s`, then expires into the webhooks queue. One queue per delay,
        so no message waits behind a longer one. The queue itself goes away once idle for a while
        (the sender redeclares it before each use), so a changed schedule leaves nothing behind."""
        delay_ms = max(1, round(delay_s * 1000))
        return RabbitQueue(
            f"{self.namespace}.webhooks.delay.{delay_ms}ms",
            durable=True,
            arguments={
                "x-message-ttl": delay_ms,
                "x-dead-letter-exchange": self.webhook_retry.name,
                "x-expires": 2 * delay_ms + 60_000,
            },
        )

    @property
    def tools(self) -> RabbitQueue:
        """Describe and mask requests; any worker answers through the request's reply-to."""
        return RabbitQueue(f"{self.namespace}.tools", queue_type=QueueType.QUORUM)

    def queue_names(self) -> list[str]:
        return [
            self.log.name,
            self.work.name,
            self.dead.name,
            self.webhooks.name,
            self.tools.name,
            self.cancels.name,
        ]

    def exchange_names(self) -> list[str]:
        exchanges = (self.events, self.live, self.control, self.dead_letters, self.webhook_retry)
        return [e.name for e in (*exchanges, self.jobs, self.jobs_any)]
