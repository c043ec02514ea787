"""The worker roster forgets workers that left or went quiet."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from contracts import WorkerHeartbeat, WorkerStarted, WorkerStopped
from edge.workers import WorkerRoster


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
