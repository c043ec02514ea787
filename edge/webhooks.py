"""Telling a job's webhook that it finished: from the edges, never from a worker, retried on a schedule.

A finished job's terminal event reaches the `{ns}.webhooks` queue, which the edges share. The edge that
takes it renders Fooocus-API's payload (`job_id`, `job_stage`, `job_result`) once and makes attempt 1.
A timeout, a connection error, a 5xx or a 429 schedules the next attempt as a `DeliverWebhook` in the
delay queue of the next delay (it carries the same body and `webhook-id`); any other status, a refused
address or the last scheduled attempt ends the delivery. Every attempt is recorded as a
`WebhookAttempted` event in the log: that is the job's delivery log, on every edge and after restarts.

With a secret (`whsec_<base64>`) each attempt is signed the Standard Webhooks way: `webhook-id`,
`webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol
from uuid import uuid4

import httpx

from contracts import DeliverWebhook, JobCancelled, JobFailed, JobSucceeded, WebhookAttempted
from edge import egress
from edge.readmodel import ReadModel
from edge.results import ResultRenderer
from edge.settings import EdgeSettings, webhook_key

log = logging.getLogger(__name__)

# The terminal event can reach the webhook queue a moment before this edge's read model folds it.
PROJECTION_WAIT_S = 30.0
RETRYABLE_STATUS = frozenset({408, 425, 429})
STARTED_KEPT = 10_000  # webhook ids this edge remembers having started (repeats of a terminal event)
Terminal = JobSucceeded | JobFailed | JobCancelled


class WebhookOutbox(Protocol):
    """Where the sender writes: the log (attempts) and the delay queues (retries)."""

    async def record(self, event: WebhookAttempted) -> None: ...

    async def schedule(self, order: DeliverWebhook, delay_s: float) -> None: ...


def sign(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value (one `v1` signature)."""
    mac = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def retryable(status: int) -> bool:
    """Only 2xx succeeds; 5xx and throttling answers are worth another try, other answers are not."""
    return status >= 500 or status in RETRYABLE_STATUS


class WebhookSender:
    """Makes one attempt per order and says what comes next; `outbox` persists both."""

    def __init__(
        self,
        model: ReadModel,
        renderer: ResultRenderer,
        settings: EdgeSettings,
        outbox: WebhookOutbox,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.model = model
        self.renderer = renderer
        self.settings = settings
        self.outbox = outbox
        self._started: dict[str, None] = {}  # oldest first
        self.key = webhook_key(settings.webhook_secret) if settings.webhook_secret else None
        # Redirects are failures (Standard Webhooks): following one would also dodge the address check.
        self.client = httpx.AsyncClient(
            timeout=settings.webhook_timeout_s, follow_redirects=False, transport=transport
        )

    async def __call__(self, message: Terminal | DeliverWebhook) -> WebhookAttempted | None:
        """Handle one message of the webhooks queue: a terminal event (attempt 1) or a due retry.

        A terminal event can come twice with the same `event_id` (a worker repeats a finished job's
        event from its manifest): its webhook starts once, guarded here against a copy handled at the
        same time and by the job's delivery log against one handled before."""
        if isinstance(message, DeliverWebhook):
            return await self.attempt(message)
        webhook_id = str(message.event_id)
        if webhook_id in self._started:
            log.info("webhook %s of job %s already started here: repeat skipped", webhook_id, message.job_id)
            return None
        self._started[webhook_id] = None
        while len(self._started) > STARTED_KEPT:
            self._started.pop(next(iter(self._started)))
        try:
            order = await self.first_order(message)
            return None if order is None else await self.attempt(order)
        except BaseException:
            self._started.pop(webhook_id, None)  # not started after all: the redelivery may start it
            raise

    async def first_order(self, event: Terminal) -> DeliverWebhook | None:
        """Render the payload once; None when the job has no webhook target (or is gone)."""
        view = await self.model.wait_finished(event.job_id, PROJECTION_WAIT_S)
        if (view is None or not view.finished) and not self.model.current.is_set():
            # The read model is behind the log (this edge is catching up): the terminal event is in
            # the log before this message, so it will be folded. Wait for it; never drop the webhook.
            await self.model.current.wait()
            view = await self.model.wait_finished(event.job_id, PROJECTION_WAIT_S)
        if view is None or not view.finished:
            log.warning("job %s is not in the read model (deleted or trimmed); no webhook", event.job_id)
            return None
        if any(attempt.webhook_id == str(event.event_id) for attempt in view.webhooks):
            log.info(
                "webhook %s of job %s was attempted before: repeat skipped", event.event_id, event.job_id
            )
            return None
        target = view.webhook_url or self.settings.webhook_url
        if not target:
            return None
        items = await self.renderer.items(view)
        payload = {
            "job_id": view.job_id,
            "job_stage": view.stage.value,
            "job_result": [{"url": item.url, "seed": item.seed} for item in items if item.url],
        }
        return DeliverWebhook(
            job_id=view.job_id,
            webhook_id=str(event.event_id),
            target=target,
            body=json.dumps(payload),
            attempt=1,
            trusted=not view.webhook_url,
        )

    async def attempt(self, order: DeliverWebhook) -> WebhookAttempted:
        """Post once, record the attempt, and schedule the next one when it is worth it."""
        attempted_at = datetime.now(UTC)
        started = time.monotonic()
        status, error, again = await self._post(order)
        duration_ms = int((time.monotonic() - started) * 1000)
        delays = self.settings.webhook_retry_delays_s
        delay = delays[order.attempt - 1] if again and order.attempt <= len(delays) else None
        if status is not None and 200 <= status < 300:
            outcome = "delivered"
        else:
            outcome = "retrying" if delay is not None else "failed"
        record = WebhookAttempted(
            job_id=order.job_id,
            webhook_id=order.webhook_id,
            target=order.target,
            attempt=order.attempt,
            attempted_at=attempted_at,
            duration_ms=duration_ms,
            status_code=status,
            error=error,
            outcome=outcome,
            next_attempt_at=None if delay is None else datetime.now(UTC) + timedelta(seconds=delay),
        )
        log.info(
            "webhook %s attempt %d for job %s: %s (%s)",
            order.webhook_id,
            order.attempt,
            order.job_id,
            outcome,
            status if error is None else error,
        )
        await self.outbox.record(record)
        if outcome == "retrying" and delay is not None:
            following = {"attempt": order.attempt + 1, "event_id": uuid4(), "occurred_at": datetime.now(UTC)}
            await self.outbox.schedule(order.model_copy(update=following), delay)
        return record

    async def _post(self, order: DeliverWebhook) -> tuple[int | None, str | None, bool]:
        """(status, error, worth retrying)."""
        try:
            if order.trusted:  # the operator's own `--webhook-url`
                pinned = await egress.pin(httpx.URL(order.target), allow_private=True)
            else:
                pinned = await egress.pin_webhook(order.target, self.settings)
        except egress.UrlRefused as refused:
            return None, f"{refused.kind}: {refused.message}", refused.kind == "url_unreachable"
        body = order.body.encode()
        timestamp = int(time.time())
        headers = {
            **pinned.headers,
            "content-type": "application/json",
            "user-agent": "fooocus-fleet-webhooks",
            "webhook-id": order.webhook_id,
            "webhook-timestamp": str(timestamp),
        }
        if self.key is not None:
            headers["webhook-signature"] = sign(self.key, order.webhook_id, timestamp, body)
        request = self.client.build_request(
            "POST", pinned.target, content=body, headers=headers, extensions=pinned.extensions
        )
        try:
            response = await self.client.send(request)
        except httpx.TimeoutException:
            return None, "timeout", True
        except httpx.HTTPError as error:
            return None, type(error).__name__, True
        status = response.status_code
        if 200 <= status < 300:
            return status, None, False
        return status, f"HTTP {status}", retryable(status)

    async def close(self) -> None:
        await self.client.aclose()
