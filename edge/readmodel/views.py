"""A job as the edge sees it, folded from its events. Pure: no I/O, no clock."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from contracts import (
    JobCancelled,
    JobCancelRequested,
    JobEvent,
    JobFailed,
    JobProgressed,
    JobQueued,
    JobStarted,
    JobSucceeded,
    JobType,
    OutputImage,
    WebhookAttempted,
)
from edge.readmodel.reading import QueuedFacts


class Stage(StrEnum):
    """Fooocus-API's `job_stage`."""

    WAITING = "WAITING"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    ERROR = "ERROR"


@dataclass(frozen=True, slots=True)
class JobView:
    """Everything a read endpoint needs to answer about one job."""

    job_id: str
    job_type: JobType | None = None
    stage: Stage = Stage.WAITING
    progress: int = 0
    status: str | None = None
    preview: str | None = None
    images: tuple[OutputImage, ...] = ()
    seeds: tuple[int, ...] = ()
    require_base64: bool = False
    webhook_url: str | None = None
    queued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    outcome: str | None = None  # the terminal event's type: job.succeeded / job.failed / job.cancelled
    error_code: str | None = None
    error_message: str | None = None
    input_keys: tuple[str, ...] = ()
    cancel_requested: bool = False
    idempotency_key: str | None = None
    request_digest: str | None = None
    webhooks: tuple[WebhookAttempted, ...] = ()  # the delivery log, in the order of the attempts
    last_seq: int = -1

    @property
    def finished(self) -> bool:
        return self.outcome is not None


def apply(view: JobView, event: JobEvent | QueuedFacts) -> JobView:
    """Fold one event into the view. Stale, repeated (`seq` not above the last) or post-terminal
    events change nothing, so replaying the log or a redelivered event is harmless."""
    if isinstance(event, JobQueued | QueuedFacts):
        # The worker's first events can reach the log a moment before the edge's JobQueued does
        # (two publishers, no order between them): it fills in the job's request whenever it comes.
        return _queued(view, event) if view.queued_at is None else view
    if isinstance(event, JobCancelRequested):
        # Not a step of the run: the edge numbers it 0, whatever the worker has reached.
        return view if view.finished or view.cancel_requested else replace(view, cancel_requested=True)
    if view.finished or event.seq <= view.last_seq:
        return view
    # One `replace` per event: a new edge folds the whole log through here.
    seq = event.seq
    match event:
        case JobStarted():
            return replace(
                view,
                stage=Stage.RUNNING,
                started_at=event.occurred_at,
                progress=0,
                status="Started",
                last_seq=seq,
            )
        case JobProgressed():
            return replace(
                view,
                stage=Stage.RUNNING,
                progress=event.progress,
                status=event.status,
                preview=event.preview or view.preview,
                last_seq=seq,
            )
        case JobSucceeded():
            return _finish(view, event, Stage.SUCCESS, "Finished", tuple(event.images))
        case JobCancelled():
            # Fooocus-API 0.5 ends a stopped job as SUCCESS with the images made so far, possibly none;
            # its status (and `outcome`) say it was cancelled.
            return _finish(view, event, Stage.SUCCESS, f"Cancelled: {event.reason}", tuple(event.images))
        case JobFailed():
            return _finish(
                view,
                event,
                Stage.ERROR,
                f"Failed: {event.message}",
                (),
                error_code=event.code,
                error_message=event.message,
            )
    return replace(view, last_seq=seq)


def _queued(view: JobView, event: JobQueued | QueuedFacts) -> JobView:
    return replace(
        view,
        job_type=event.job_type,
        seeds=tuple(event.params.seeds()),
        require_base64=event.require_base64,
        webhook_url=event.webhook_url,
        input_keys=tuple(event.inputs.keys()),
        idempotency_key=event.idempotency_key,
        request_digest=event.request_digest,
        queued_at=event.occurred_at,
        status=view.status or "Waiting",
        last_seq=max(view.last_seq, event.seq),
    )


def _finish(
    view: JobView,
    event: JobEvent,
    stage: Stage,
    status: str,
    images: tuple[OutputImage, ...],
    **more: str,
) -> JobView:
    return replace(
        view,
        stage=stage,
        status=status,
        progress=100 if isinstance(event, JobSucceeded) else view.progress,  # a stop keeps where it was
        images=images,
        finished_at=event.occurred_at,
        outcome=event.type,
        last_seq=event.seq,
        **more,
    )


def with_attempt(view: JobView, attempt: WebhookAttempted) -> JobView:
    """Add one webhook attempt to the job's delivery log; a repeat of the same attempt replaces it."""
    kept = [a for a in view.webhooks if (a.webhook_id, a.attempt) != (attempt.webhook_id, attempt.attempt)]
    ordered = sorted([*kept, attempt], key=lambda a: (a.attempted_at, a.attempt))
    return replace(view, webhooks=tuple(ordered))
