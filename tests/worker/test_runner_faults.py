"""JobRunner under faults: storage outages, deadlines, and a worker leaving mid-job."""

from __future__ import annotations

import asyncio
import time

import pytest

from storage import StorageUnavailable
from tests.worker.test_runner import CountingEngine, MemoryStore, job, runner
from worker.runner import LAST_ATTEMPT, SHUTDOWN, JobHandedBack


class DownStore(MemoryStore):
    """Storage that is away: every call fails as an unreachable endpoint does."""

    async def get(self, key: str) -> bytes:
        raise StorageUnavailable("object storage unreachable", key=key)

    async def put(self, key: str, data: bytes, content_type: str = "") -> str:
        raise StorageUnavailable("object storage unreachable", key=key)


def test_a_storage_fault_pauses_by_attempt_then_hands_the_job_back() -> None:
    published: list = []
    run = runner(CountingEngine(), DownStore(), published, [])
    run.storage_retry_s = 0.05
    started = time.monotonic()
    with pytest.raises(StorageUnavailable):
        asyncio.run(run.run(job(), attempt=2))
    assert time.monotonic() - started >= 0.1  # 0.05 s times attempt 2
    assert published == []  # nothing said: the redelivery decides


def test_the_last_attempt_fails_the_job_for_storage_saying_so() -> None:
    published: list = []
    run = runner(CountingEngine(), DownStore(), published, [])
    terminal = asyncio.run(run.run(job(), attempt=LAST_ATTEMPT))
    assert (terminal.type, terminal.code) == ("job.failed", "storage_unavailable")
    assert f"failed on all {LAST_ATTEMPT} attempts" in terminal.message
    assert published == [terminal]


def test_a_job_past_its_deadline_fails() -> None:
    store, published = MemoryStore(), []
    engine = CountingEngine(steps=50)
    engine.before_step = lambda info: time.sleep(0.01)
    run = runner(engine, store, published, [])
    run.deadline_s = 0.1
    terminal = asyncio.run(run.run(job(), attempt=1))
    assert (terminal.type, terminal.code) == ("job.failed", "deadline_exceeded")
    assert "deadline of 0.1 s" in terminal.message


def test_a_worker_leaving_hands_the_running_job_back() -> None:
    store, published = MemoryStore(), []
    engine = CountingEngine(steps=5)
    run = runner(engine, store, published, [])
    engine.before_step = lambda info: run.interrupts.trip(SHUTDOWN) if info.step == 2 else None
    with pytest.raises(JobHandedBack):
        asyncio.run(run.run(job(), attempt=1))
    assert [e.type for e in published] == ["job.started"]  # no end: another worker will finish it


def test_the_attempt_counts_hand_backs_and_the_delivery_does_not() -> None:
    from worker.handbacks import attempt_of

    assert attempt_of({}) == (1, 1)
    assert attempt_of({"x-delivery-count": 2}) == (3, 3)  # two redeliveries: crashes or storage faults
    assert attempt_of({"x-fleet-attempts-before": 5}) == (6, 1)  # five hand-backs, a fresh message
    assert attempt_of({"x-fleet-attempts-before": 5, "x-delivery-count": 1}) == (7, 2)
