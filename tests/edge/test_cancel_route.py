"""The per-job cancel route: the cancel's marker goes to storage before the cancel is logged, and a
cancel that cannot be recorded is a 503 that logs nothing (the caller retries)."""

from __future__ import annotations

import asyncio
from typing import Any

from contracts import JobCancelRequested, JobQueued
from storage import StorageUnavailable, keys
from tests.edge.test_idempotency import SMALL, T2I, MemoryStore, make_app


class HoldingBus:
    """Keeps every job queued; records what is logged, in order with the store's writes."""

    def __init__(self, model: Any, store: MemoryStore, order: list[str]) -> None:
        self.model, self.store, self.order = model, store, order

    async def submit(self, job: JobQueued) -> None:
        self.order.append("queued")

    async def cancel(self, job_id: str) -> None:
        assert keys.cancel_key(job_id) in self.store.objects  # the marker is already there
        self.order.append("cancel logged")
        await self.model.apply(JobCancelRequested(job_id=job_id, seq=0))


class FailingStore(MemoryStore):
    async def put(self, key: str, data: bytes, content_type: str = "") -> str:
        raise StorageUnavailable(key=key)


def cancel_once(store: MemoryStore) -> tuple[Any, list[str], str]:
    app = make_app()
    services = app.ctx.services
    order: list[str] = []
    services.store = store  # a text-to-image job stores nothing at submit
    services.bus = HoldingBus(services.model, store, order)

    async def scenario() -> tuple[Any, str]:
        client = app.asgi_client
        _, queued = await client.post(T2I, json={**SMALL, "async_process": True})
        job_id = queued.json["job_id"]
        _, answer = await client.post(f"/v1/generation/job/{job_id}/cancel")
        return answer, job_id

    answer, job_id = asyncio.run(scenario())
    return answer, order, job_id


def test_the_marker_is_stored_before_the_cancel_is_logged() -> None:
    store = MemoryStore()
    answer, order, job_id = cancel_once(store)
    assert answer.status == 202 and order == ["queued", "cancel logged"]
    assert store.objects[keys.cancel_key(job_id)] == b"cancelled"


def test_a_cancel_storage_cannot_record_is_a_503_that_logs_nothing() -> None:
    answer, order, _ = cancel_once(FailingStore())
    assert answer.status == 503 and "not recorded" in answer.json["detail"]
    assert order == ["queued"]
