"""The projection store: history trimming, paging, and waiting for a job to finish."""

from __future__ import annotations

import asyncio

from edge.projections.store import ProjectionStore
from tests.edge.projections.events import failed, queued


def test_history_keeps_the_newest_finished_jobs_and_pages_them() -> None:
    async def scenario() -> ProjectionStore:
        store = ProjectionStore(history_limit=3)
        for n in range(5):
            await store.apply(queued(f"j{n}"))
            await store.apply(failed(f"j{n}"))
        await store.apply(queued("waiting"))
        return store

    store = asyncio.run(scenario())
    assert store.get("j0") is None and store.get("j1") is None and store.finished_count == 3
    first = store.page(0, 2)
    assert [v.job_id for v in first.history] == ["j4", "j3"] and [v.job_id for v in first.queue] == [
        "waiting"
    ]
    assert [v.job_id for v in store.page(1, 2).history] == ["j2"]
    assert [v.job_id for v in store.page(0, 20, job_id="j3").history] == ["j3"]
    assert store.last_job_id == "waiting"


def test_waiting_returns_when_the_terminal_event_arrives_or_times_out() -> None:
    async def scenario() -> tuple[bool, bool]:
        store = ProjectionStore()
        await store.apply(queued("a"))
        waiter = asyncio.create_task(store.wait_finished("a", timeout=5))
        await asyncio.sleep(0.01)
        await store.apply(failed("a"))
        done = await waiter
        late = await store.wait_finished("never", timeout=0.05)
        return done is not None and done.finished, late is None

    assert asyncio.run(scenario()) == (True, True)
