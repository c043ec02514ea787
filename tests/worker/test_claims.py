"""One owner per job: a redelivery waits while the first run's claim is alive, an expired claim is taken
over, and a run that was taken over publishes no terminal event (the attempt fences it)."""

from __future__ import annotations

import asyncio
import time

import pytest

from storage import keys
from tests.worker.test_runner import CountingEngine, MemoryStore, job, runner
from worker.claims import ClaimLost, JobClaims
from worker.engine.runs import StepInfo


def test_a_second_worker_waits_for_a_live_claim_until_the_job_finished() -> None:
    store = MemoryStore()
    first, second = JobClaims(store, "w1"), JobClaims(store, "w2")  # type: ignore[arg-type]
    done = asyncio.Event()
    order: list[str] = []

    async def scenario() -> None:
        async def first_run() -> None:
            async with first.hold("j", 1, lambda: _false(), lambda: None):
                order.append("w1 runs")
                await asyncio.sleep(1.5)
                order.append("w1 ends")
                done.set()

        async def finished() -> bool:
            return done.is_set()

        async def second_run() -> None:
            await asyncio.sleep(0.1)
            async with second.hold("j", 2, finished, lambda: None):
                order.append("w2 goes on")

        await asyncio.gather(first_run(), second_run())

    asyncio.run(scenario())
    assert order == ["w1 runs", "w1 ends", "w2 goes on"]
    assert keys.claim_key("j") not in store.objects  # each owner removes its claim


def test_an_expired_claim_is_taken_over_and_fences_the_old_run() -> None:
    store = MemoryStore()
    now = [1000.0]
    old, new = JobClaims(store, "w1", 30, lambda: now[0]), JobClaims(store, "w2", 30, lambda: now[0])  # type: ignore[arg-type]

    async def scenario() -> None:
        await old._write("j", 1)
        now[0] += 31  # w1 died or was cut off for longer than its lease
        async with new.hold("j", 2, lambda: _false(), lambda: None):
            await new.check("j", 2)
            with pytest.raises(ClaimLost, match="w2"):
                await old.check("j", 1)

    asyncio.run(scenario())


def test_a_takeover_runs_as_a_later_attempt_than_the_claim_it_takes_over() -> None:
    # A job that expired from a warm queue into the shared one counts its deliveries from 1 again.
    store = MemoryStore()
    now = [1000.0]
    old, new = JobClaims(store, "w1", 30, lambda: now[0]), JobClaims(store, "w2", 30, lambda: now[0])  # type: ignore[arg-type]
    owned: list[int] = []

    async def scenario() -> None:
        await old._write("j", 2)
        now[0] += 31
        async with new.hold("j", 1, lambda: _false(), lambda: None) as attempt:
            owned.append(attempt)
            await new.check("j", attempt)
        async with new.hold("j", 5, lambda: _false(), lambda: None) as attempt:  # no claim left: as given
            owned.append(attempt)

    asyncio.run(scenario())
    assert owned == [3, 5]


def test_a_run_taken_over_mid_job_publishes_no_terminal_event() -> None:
    store, published, live = MemoryStore(), [], []
    engine = CountingEngine(steps=20)
    run = runner(engine, store, published, live)
    run.claims.lease_s = 0.3  # renewed every 0.1 s

    def slow_step(info: StepInfo) -> None:
        if info.step == 2:
            # Another worker took the job over (this run's lease had run out, as seen from there).
            taker = JobClaims(store, "w2", 30)  # type: ignore[arg-type]
            asyncio.run(taker._write("job-1", 2))
        time.sleep(0.05)

    engine.before_step = slow_step
    with pytest.raises(ClaimLost):
        asyncio.run(run.run(job(1), attempt=1))
    assert [e.type for e in published] == ["job.started"]  # no terminal event from this run
    assert keys.manifest_key("job-1") not in store.objects
    assert store.objects[keys.claim_key("job-1")]  # the new owner's claim is left alone


async def _false() -> bool:
    return False
