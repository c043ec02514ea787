"""One job, start to end: JobStarted, progress, images into storage, exactly one terminal event.

Faults (docs/reliability.md): a storage fault hands the job back after a pause that grows with the attempt,
and the last delivery the queue allows fails it with `storage_unavailable` instead; a job running past
its deadline fails with `deadline_exceeded`; a worker leaving mid-job hands it back (`JobHandedBack`).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from contracts import (
    JobCancelled,
    JobFailed,
    JobQueued,
    JobStarted,
    JobSucceeded,
    JobType,
    OutputImage,
    job_seq,
    read_event,
)
from contracts.base import FINAL_ATTEMPT
from contracts.topology import DELIVERY_LIMIT
from storage import ObjectNotFound, ObjectStore, StorageError, keys
from worker.claims import LEASE_S, JobClaims
from worker.engine.folders import MissingModelError
from worker.engine.jobs import JobImages
from worker.interrupts import InterruptSwitch, JobInterrupted
from worker.job_files import MissingInputError, load_inputs, store_image
from worker.progress import ProgressEvents, ProgressThrottle, percent

if TYPE_CHECKING:
    from pydantic import BaseModel

    from contracts import GenerationParams
    from worker.engine.runs import GeneratedImage, StepInfo

log = logging.getLogger(__name__)

Publish = Callable[["BaseModel"], Awaitable[None]]
Terminal = JobSucceeded | JobFailed | JobCancelled


class Engine(Protocol):
    """What the runner needs of an engine (see `worker.engine.jobs.JobEngine.run`)."""

    def run(
        self,
        job_type: JobType,
        params: GenerationParams,
        inputs: JobImages,
        seeds: list[int],
        on_step: Callable[[StepInfo], None],
    ) -> Iterator[GeneratedImage]: ...


class JobHandedBack(Exception):
    """The worker is leaving: the job goes back to the queue for another worker."""


# Interrupt reasons the runner treats specially; any other reason (a stop, a cancel) cancels the job.
DEADLINE = "deadline"
SHUTDOWN = "shutdown"
CLAIM_LOST = "claim_lost"
# The last delivery the work queue makes: attempt `DELIVERY_LIMIT + 1`, after which it dead-letters.
LAST_ATTEMPT = DELIVERY_LIMIT + 1


@dataclass
class JobRunner:
    """Runs jobs on one engine and reports them; the caller acks only after `run` returns."""

    worker_id: str
    engine: Engine
    store: ObjectStore
    publish_log: Publish
    publish_live: Publish
    interrupts: InterruptSwitch
    progress_interval_s: float = 0.25
    deadline_s: float = 3600.0
    storage_retry_s: float = 5.0
    claim_lease_s: float = LEASE_S

    def __post_init__(self) -> None:
        self.claims = JobClaims(self.store, self.worker_id, self.claim_lease_s)

    async def run(self, job: JobQueued, attempt: int, delivery: int | None = None) -> Terminal:
        """Run `job` (its `attempt`, from 1, hand-backs included; this message's `delivery`, from 1,
        the attempt when not given) and return its published terminal event.

        Raises `StorageError` to have the job redelivered (after a pause), `JobHandedBack` when the worker
        leaves mid-job (the caller queues it again, `worker.handbacks`).
        """
        try:
            return await self._run(job, attempt)
        except StorageError as error:
            if (delivery or attempt) >= LAST_ATTEMPT:
                return await self._fail_without_storage(job.job_id, error)
            # Redelivery is immediate: pause first, so the attempts span an outage instead of a second.
            log.warning(
                "job %s met a storage fault on attempt %d, handing it back: %s", job.job_id, attempt, error
            )
            await asyncio.sleep(self.storage_retry_s * attempt)
            raise

    async def _run(self, job: JobQueued, attempt: int) -> Terminal:
        """The job under its claim: one run at a time, whichever worker holds a delivery of it."""
        job_id = job.job_id

        async def finished() -> bool:
            return await self._already_finished(job_id) is not None

        def lost() -> None:
            self.interrupts.trip(CLAIM_LOST, job_id)

        async with self.claims.hold(job_id, attempt, finished, lost) as owned_as:
            return await self._run_owned(job, owned_as)

    async def _run_owned(self, job: JobQueued, attempt: int) -> Terminal:
        finished = await self._already_finished(job.job_id)
        if finished is not None:
            # A redelivery after a crash past the upload: say the same thing again, same event_id.
            log.info("job %s already finished, republishing its terminal event", job.job_id)
            await self.publish_log(finished)
            return finished
        reason = self.interrupts.cancelled(job.job_id) or await self._cancel_marker(job.job_id)
        if reason is not None:
            # Cancelled while it waited in the queue: it ends here, without a JobStarted or a GPU.
            log.info("job %s was cancelled before it started", job.job_id)
            await self.claims.check(job.job_id, attempt)
            return await self._conclude(
                JobCancelled(job_id=job.job_id, seq=job_seq(attempt, 1), reason=reason)
            )
        events = ProgressEvents(job.job_id, attempt)
        await self.publish_log(
            JobStarted(job_id=job.job_id, seq=job_seq(attempt, 1), worker_id=self.worker_id, attempt=attempt)
        )
        log.info("job.started %s attempt %d", job.job_id, attempt)
        ending = await self._generate(job, events)
        await self.claims.check(job.job_id, attempt)  # the fence: a run taken over publishes nothing
        terminal = await self._conclude(ending)
        log.info("job.ended %s %s", job.job_id, terminal.type)
        return terminal

    async def fail(self, job_id: str, code: str, message: str) -> Terminal:
        """End a dead-lettered job as failed, unless it had already finished."""
        try:
            finished = await self._already_finished(job_id)
            if finished is not None:
                await self.publish_log(finished)
                return finished
            return await self._conclude(
                JobFailed(job_id=job_id, seq=job_seq(FINAL_ATTEMPT, 1), code=code, message=message)
            )
        except StorageError:
            # The dead-letter queue has no delivery limit: pause, or an outage becomes a busy loop.
            await asyncio.sleep(self.storage_retry_s)
            raise

    async def _fail_without_storage(self, job_id: str, error: StorageError) -> Terminal:
        """The last attempt met a storage fault: fail the job now, saying so, rather than dead-letter it.

        The manifest cannot be written while storage is down; without it a later redelivery would run the job
        again, but this one is acked right after, so only a crash in between could cause that.
        """
        failed = JobFailed(
            job_id=job_id,
            seq=job_seq(FINAL_ATTEMPT, 1),
            code="storage_unavailable",
            message=f"object storage failed on all {LAST_ATTEMPT} attempts: {error}",
        )
        try:
            await self.store.put(
                keys.manifest_key(job_id), failed.model_dump_json().encode(), "application/json"
            )
        except StorageError:
            log.warning("job %s failed for storage; its manifest could not be written either", job_id)
        await self.publish_log(failed)
        return failed

    async def _conclude(self, terminal: Terminal) -> Terminal:
        # The manifest is written before the terminal event, so a crash between the two replays it.
        await self.store.put(
            keys.manifest_key(terminal.job_id), terminal.model_dump_json().encode(), "application/json"
        )
        await self.publish_log(terminal)
        await self._forget_cancel(terminal.job_id)
        return terminal

    async def _cancel_marker(self, job_id: str) -> str | None:
        """The reason of a cancel the edge recorded in storage (`keys.cancel_key`), or None: what makes a
        cancel durable however long the job waited, without replaying every cancel ever requested."""
        try:
            return (await self.store.get(keys.cancel_key(job_id))).decode() or "cancelled"
        except ObjectNotFound:
            return None

    async def _forget_cancel(self, job_id: str) -> None:
        """The job ended: its cancel is no longer needed, here or in storage."""
        self.interrupts.forget(job_id)
        try:
            await self.store.delete(keys.cancel_key(job_id))
        except StorageError as error:  # a leftover marker only names a job that has ended
            log.debug("cancel marker of %s left in storage: %r", job_id, error)

    async def _already_finished(self, job_id: str) -> Terminal | None:
        try:
            body = await self.store.get(keys.manifest_key(job_id))
        except ObjectNotFound:
            return None
        event = read_event(body)
        assert isinstance(event, JobSucceeded | JobFailed | JobCancelled)
        return event

    async def _generate(self, job: JobQueued, events: ProgressEvents) -> Terminal:
        params = job.params
        stored: list[OutputImage] = []
        started = time.monotonic()
        advanced = params.advanced_params
        # As Fooocus's UI does: with the NSFW censor on, no preview shows the image before it is checked.
        on_step = self._step_reporter(events, advanced.disable_preview or advanced.black_out_nsfw)
        try:
            inputs = await load_inputs(self.store, job)
        except MissingInputError as error:
            return JobFailed(
                job_id=job.job_id, seq=events.next_seq(), code="invalid_input", message=str(error)
            )
        self.interrupts.arm(job.job_id)
        # Checked at the engine's next step, like a stop; the broker's consumer timeout is far above it.
        deadline = asyncio.get_running_loop().call_later(
            self.deadline_s, self.interrupts.trip, DEADLINE, job.job_id
        )
        try:
            images = await asyncio.to_thread(self._start, job, inputs, on_step)
            while (generated := await asyncio.to_thread(next, images, None)) is not None:
                stored.append(await store_image(self.store, job, generated))
        except JobInterrupted as stop:
            if stop.reason == SHUTDOWN:
                log.info("job %s handed back: the worker is leaving", job.job_id)
                raise JobHandedBack(job.job_id) from None
            if stop.reason == DEADLINE:
                return JobFailed(
                    job_id=job.job_id,
                    seq=events.next_seq(),
                    code="deadline_exceeded",
                    message=f"the job ran longer than its deadline of {self.deadline_s:g} s and was stopped",
                )
            return JobCancelled(job_id=job.job_id, seq=events.next_seq(), reason=stop.reason, images=stored)
        except StorageError:
            raise  # transient: the message is nacked and redelivered, bounded by the delivery limit
        except MissingModelError as error:
            # Not a bug and not transient: the message names the file and the folder it belongs in.
            log.warning("job %s needs a model this worker lacks: %s", job.job_id, error)
            return JobFailed(
                job_id=job.job_id, seq=events.next_seq(), code="missing_model", message=str(error)
            )
        except Exception as error:
            log.exception("job %s failed in the engine", job.job_id)
            return JobFailed(
                job_id=job.job_id, seq=events.next_seq(), code="engine_error", message=str(error)
            )
        finally:
            deadline.cancel()
            self.interrupts.disarm()
        reason = self.interrupts.cancelled(job.job_id)
        if reason is not None:
            # Cancelled after its last step (while the images were stored): the cancel still wins.
            return JobCancelled(job_id=job.job_id, seq=events.next_seq(), reason=reason, images=stored)
        return JobSucceeded(
            job_id=job.job_id,
            seq=events.next_seq(),
            images=stored,
            worker_id=self.worker_id,
            run_ms=int((time.monotonic() - started) * 1000),
        )

    def _start(
        self, job: JobQueued, inputs: JobImages, on_step: Callable[[StepInfo], None]
    ) -> Iterator[GeneratedImage]:
        """The engine entry for the job's kind (in a thread: it may load models and preprocess)."""
        return self.engine.run(job.job_type, job.params, inputs, job.params.seeds(), on_step)

    def _step_reporter(self, events: ProgressEvents, disable_preview: bool) -> Callable[[StepInfo], None]:
        """The engine's step callback: checks for a stop, then hands throttled progress to the loop."""
        loop = asyncio.get_running_loop()
        throttle = ProgressThrottle(self.progress_interval_s)

        def on_step(info: StepInfo) -> None:
            self.interrupts.check()
            if not throttle.allow(info.step, info.total_steps):
                return
            preview = None if disable_preview else base64.b64encode(info.preview()).decode()
            event = events.step(
                percent(info.image_index, info.image_count, info.step, info.total_steps),
                f"Step {info.step}/{info.total_steps} in the {info.image_index + 1}-th Sampling",
                preview,
            )
            # Fire and forget: progress is best effort and must never slow the diffusion loop.
            asyncio.run_coroutine_threadsafe(self.publish_live(event), loop)

        return on_step
