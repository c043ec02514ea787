"""Projections of cancel requests, idempotency keys and webhook attempts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from contracts import (
    JobCancelled,
    JobCancelRequested,
    JobDeleted,
    JobStarted,
    WebhookAttempted,
    job_seq,
)
from edge.projections.jobs import JobView, Stage, apply
from edge.projections.store import ProjectionStore
from tests.edge.projections.events import queued

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def attempt(job_id: str, n: int, outcome: str, seconds: float) -> WebhookAttempted:
    return WebhookAttempted(
        job_id=job_id,
        webhook_id="hook-1",
        target="https://hooks.example/x",
        attempt=n,
        attempted_at=T0 + timedelta(seconds=seconds),
        duration_ms=3,
        status_code=500 if outcome != "delivered" else 200,
        outcome=outcome,  # type: ignore[arg-type]
    )


def test_a_cancel_request_marks_the_job_whatever_its_seq_and_not_after_it_ended() -> None:
    view = apply(JobView(job_id="j"), queued("j"))
    view = apply(view, JobStarted(job_id="j", seq=job_seq(1, 1), worker_id="w", attempt=1))
    asked = apply(view, JobCancelRequested(job_id="j", seq=0))  # seq 0 is below the worker's
    assert asked.cancel_requested and asked.stage is Stage.RUNNING
    ended = apply(asked, JobCancelled(job_id="j", seq=job_seq(1, 2), reason="cancelled"))
    assert ended.finished and ended.status == "Cancelled: cancelled" and ended.stage is Stage.ERROR
    stopped = apply(view, JobCancelled(job_id="j", seq=job_seq(1, 2), reason="stopped"))
    assert not apply(stopped, JobCancelRequested(job_id="j", seq=0)).cancel_requested


def test_the_first_job_logged_with_a_key_owns_it_until_the_job_is_gone() -> None:
    async def scenario() -> ProjectionStore:
        store = ProjectionStore(history_limit=1)
        await store.apply(queued("a", key="k1", digest="d1"))
        await store.apply(queued("b", key="k1", digest="d2"))  # a race lost at another edge
        await store.apply(queued("c", key="k2", digest="d3"))
        return store

    store = asyncio.run(scenario())
    owner = store.by_key("k1")
    assert owner is not None and (owner.job_id, owner.request_digest) == ("a", "d1")
    assert store.by_key("nope") is None
    asyncio.run(store.apply(JobDeleted(job_id="a", seq=0)))
    assert store.by_key("k1") is None
    asyncio.run(store.apply(queued("d", key="k1", digest="d1")))
    assert store.by_key("k1").job_id == "d"  # type: ignore[union-attr]


def test_trimmed_history_frees_its_keys() -> None:
    async def scenario() -> ProjectionStore:
        store = ProjectionStore(history_limit=1)
        for job_id, key in (("a", "k1"), ("b", "k2")):
            await store.apply(queued(job_id, key=key, digest="d"))
            await store.apply(JobCancelled(job_id=job_id, seq=job_seq(1, 1), reason="stopped"))
        return store

    store = asyncio.run(scenario())
    assert store.by_key("k1") is None and store.by_key("k2").job_id == "b"  # type: ignore[union-attr]


def test_webhook_attempts_form_the_delivery_log_in_order_without_repeats() -> None:
    async def scenario() -> ProjectionStore:
        store = ProjectionStore()
        await store.apply(queued("j"))
        await store.apply(JobCancelled(job_id="j", seq=job_seq(1, 1), reason="stopped"))
        for event in (
            attempt("j", 2, "delivered", 30),
            attempt("j", 1, "retrying", 0),
            attempt("j", 2, "delivered", 31),  # the same attempt again (a redelivered message)
            attempt("unknown", 1, "failed", 0),
        ):
            await store.record_webhook(event)
        return store

    store = asyncio.run(scenario())
    view = store.get("j")
    assert view is not None
    assert [(a.attempt, a.outcome, a.attempted_at) for a in view.webhooks] == [
        (1, "retrying", T0),
        (2, "delivered", T0 + timedelta(seconds=31)),
    ]
    assert store.get("unknown") is None
