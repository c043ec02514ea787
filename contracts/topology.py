"""Every exchange and queue of the fleet, named once; edge and workers both use these objects (and
`messaging.broker` declares them and publishes to them).

One publish of `JobQueued` to the events exchange lands in both the durable log (the stream every
edge folds into projections) and the work queue the workers consume, so accepting a job is a single
confirmed write: there is no window where a job is logged but never queued, or queued but not logged.

Cancel requests also land in a small stream of their own that every worker replays from its first
offset, so a worker that starts after a cancel still knows the job is cancelled when it dequeues it.
Webhook retries wait in per-delay queues whose messages expire back into the webhooks queue, so a
scheduled retry survives any edge restart.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class Topology:
    """Names and arguments under one namespace (tests use a fresh namespace per run)."""

    namespace: str = "fleet"
    log_max_age: str = "30D"
    log_max_bytes: int = 5 * 1024**3

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
    def work(self) -> RabbitQueue:
        """Jobs for workers: quorum, bounded redelivery, poison and exhausted jobs dead-lettered."""
        return RabbitQueue(
            f"{self.namespace}.generate",
            queue_type=QueueType.QUORUM,
            arguments={
                "x-delivery-limit": DELIVERY_LIMIT,
                "x-dead-letter-exchange": self.dead_letters.name,
                "x-consumer-timeout": CONSUMER_TIMEOUT_MS,
            },
            routing_key=QUEUED,
        )

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
        return [e.name for e in (self.events, self.live, self.control, self.dead_letters, self.webhook_retry)]
