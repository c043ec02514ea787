"""`JobDeleted` removes a job from every read; the worker roster forgets workers that left or went quiet."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from contracts import (
    JobDeleted,
    JobQueued,
    WorkerHeartbeat,
    WorkerStarted,
    WorkerStopped,
)
from edge.projections.store import ProjectionStore
from edge.projections.workers import WorkerRoster
from tests.edge.projections.events import failed, queued


def test_deleted_job_leaves_history_and_ignores_later_events() -> None:
    async def scenario() -> ProjectionStore:
        store = ProjectionStore()
        for n in range(4):
            await store.apply(queued(f"j{n}"))
            await store.apply(failed(f"j{n}"))
        await store.apply(JobDeleted(job_id="j2", seq=0))
        await store.apply(failed("j2"))  # a republished terminal event after the deletion
        await store.apply(queued("j2"))
        return store

    store = asyncio.run(scenario())
    assert store.get("j2") is None
    assert store.finished_count == 3
    assert [v.job_id for v in store.page(0, 2).history] == ["j3", "j1"]
    assert [v.job_id for v in store.page(1, 2).history] == ["j0"]
    assert store.page(0, 20, job_id="j2").history == []


def test_deleting_an_unknown_job_changes_nothing() -> None:
    async def scenario() -> ProjectionStore:
        store = ProjectionStore()
        await store.apply(queued("a"))
        await store.apply(JobDeleted(job_id="zzz", seq=0))
        return store

    store = asyncio.run(scenario())
    assert [v.job_id for v in store.unfinished()] == ["a"]


def test_queued_view_remembers_its_input_keys() -> None:
    from contracts import ImageInputs

    job = queued("k").model_copy(update={"inputs": ImageInputs(input_image_key="inputs/k/input_image.png")})
    store = asyncio.run(_apply(job))
    view = store.get("k")
    assert view is not None and view.input_keys == ("inputs/k/input_image.png",)


async def _apply(event: JobQueued) -> ProjectionStore:
    store = ProjectionStore()
    await store.apply(event)
    return store


def test_roster_unions_live_workers_and_forgets_stopped_and_silent_ones() -> None:
    now = datetime.now(UTC)
    old = now - timedelta(seconds=60)

    async def scenario() -> WorkerRoster:
        roster = WorkerRoster(timedelta(seconds=20))
        await roster.apply(WorkerHeartbeat(worker_id="a", models=["m1", "m2"], loras=["l1"], occurred_at=now))
        await roster.apply(WorkerHeartbeat(worker_id="b", models=["m2", "m3"], loras=["l2"], occurred_at=now))
        await roster.apply(WorkerHeartbeat(worker_id="quiet", models=["gone"], occurred_at=old))
        await roster.apply(WorkerStarted(worker_id="left", models=["left-model"], occurred_at=now))
        await roster.apply(WorkerStopped(worker_id="left", occurred_at=now))
        # a start replayed from the log long ago does not bring a worker back
        await roster.apply(WorkerStarted(worker_id="ancient", models=["old"], occurred_at=old))
        return roster

    roster = asyncio.run(scenario())
    assert roster.models(now) == (["m1", "m2", "m3"], ["l1", "l2"])
    assert {w.worker_id for w in roster.alive(now)} == {"a", "b"}


def test_waiting_for_heartbeats_returns_when_every_worker_reported() -> None:
    async def scenario() -> float:
        roster = WorkerRoster(timedelta(seconds=20))
        before = datetime.now(UTC) - timedelta(seconds=5)
        await roster.apply(WorkerHeartbeat(worker_id="a", occurred_at=before))
        since = datetime.now(UTC)
        loop = asyncio.get_running_loop()
        start = loop.time()
        beat = WorkerHeartbeat(worker_id="a", models=["new"])
        loop.call_later(0.05, lambda: asyncio.ensure_future(roster.apply(beat)))
        await roster.wait_heard_since(since, {"a"}, timeout=5)
        return loop.time() - start

    assert asyncio.run(scenario()) < 2
