"""One owner per job at a time: a claim record in object storage (`claims/{job_id}`), held with a lease
that its worker renews while the job runs.

A worker that loses its broker connection mid-job runs on (the engine thread cannot be stopped), and the
broker redelivers the job, perhaps to another, idle worker. Without a claim that worker finds no manifest
yet and runs the job a second time: two runs, two terminal events. With one, it waits while the first
run's claim is alive, then finds that run's manifest and repeats its terminal event, the same `event_id`
(`worker.runner`). A claim whose lease ran out (its worker died) is taken over by the newer attempt;
the old run, if it was only cut off, sees the takeover at its next renewal or before its terminal event
(`check`) and publishes nothing: the attempt number fences it. A takeover always runs as a later attempt
than the claim it takes over, even when its delivery counts fewer (a job that expired from a warm queue
into the shared one starts counting its deliveries again), so its events sort after the old run's.

Leases compare wall clocks of different hosts: keep them in sync (NTP), well within `lease_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass

from storage import ObjectNotFound, ObjectStore, StorageError, keys

log = logging.getLogger(__name__)

LEASE_S = 30.0
POLL_S = 1.0


class ClaimLost(Exception):
    """Another worker took the job over (this run's lease ran out): this run must publish nothing."""


@dataclass(frozen=True)
class Claim:
    worker_id: str
    attempt: int
    expires_at: float  # seconds since the epoch

    def live(self, now: float) -> bool:
        return self.expires_at > now

    def held_by(self, worker_id: str, attempt: int) -> bool:
        return (self.worker_id, self.attempt) == (worker_id, attempt)


class JobClaims:
    """Claims of the jobs this worker runs, in `store`."""

    def __init__(
        self,
        store: ObjectStore,
        worker_id: str,
        lease_s: float = LEASE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.worker_id = worker_id
        self.lease_s = lease_s
        self.clock = clock

    @contextlib.asynccontextmanager
    async def hold(
        self, job_id: str, attempt: int, finished: Callable[[], Awaitable[bool]], on_lost: Callable[[], None]
    ) -> AsyncIterator[int]:
        """Own `job_id` while the block runs, as the attempt it yields (`attempt`, or one past a claim
        left by an earlier run): first wait while another worker's claim is alive (unless the job
        `finished` meanwhile), then claim it and renew the lease until the block ends; `on_lost` runs if
        a renewal finds the job taken over."""
        left = await self._wait_for_owner(job_id, finished)
        if left is not None and left.attempt >= attempt:
            attempt = left.attempt + 1
        await self._write(job_id, attempt)
        renewing = asyncio.create_task(self._renew(job_id, attempt, on_lost))
        try:
            yield attempt
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            # Left behind when storage is away: it only expires, and the job has ended or is handed back.
            with contextlib.suppress(StorageError):
                if await self.owned(job_id, attempt):
                    await self.store.delete(keys.claim_key(job_id))

    async def owned(self, job_id: str, attempt: int) -> bool:
        claim = await self._read(job_id)
        return claim is not None and claim.held_by(self.worker_id, attempt)

    async def check(self, job_id: str, attempt: int) -> None:
        """The fence before a terminal event: `ClaimLost` unless this run still owns the job."""
        claim = await self._read(job_id)
        if claim is not None and not claim.held_by(self.worker_id, attempt):
            raise ClaimLost(f"job {job_id} was taken over by {claim.worker_id} (attempt {claim.attempt})")

    async def _wait_for_owner(self, job_id: str, finished: Callable[[], Awaitable[bool]]) -> Claim | None:
        """The claim left when it is no longer in the way (none, ours, or expired)."""
        waited = False
        while True:
            claim = await self._read(job_id)
            if claim is None or claim.worker_id == self.worker_id or not claim.live(self.clock()):
                return claim
            if await finished():
                return claim
            if not waited:
                log.info(
                    "job %s is still run by %s (attempt %d): waiting for it",
                    job_id,
                    claim.worker_id,
                    claim.attempt,
                )
                waited = True
            await asyncio.sleep(POLL_S)

    async def _renew(self, job_id: str, attempt: int, on_lost: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                if not await self.owned(job_id, attempt):
                    log.warning("job %s was taken over by another worker: this run stops", job_id)
                    on_lost()
                    return
                await self._write(job_id, attempt)
            except StorageError as error:  # the lease may run out; the fence decides at the end
                log.warning("could not renew the claim on job %s: %r", job_id, error)

    async def _write(self, job_id: str, attempt: int) -> None:
        claim = Claim(self.worker_id, attempt, self.clock() + self.lease_s)
        await self.store.put(keys.claim_key(job_id), json.dumps(asdict(claim)).encode(), "application/json")

    async def _read(self, job_id: str) -> Claim | None:
        try:
            return Claim(**json.loads(await self.store.get(keys.claim_key(job_id))))
        except ObjectNotFound:
            return None
        except (ValueError, TypeError):  # unreadable: treat as no claim rather than block the job
            return None
