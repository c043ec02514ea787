"""The pure part of a fold: which jobs a batch of log events changes, and their new state."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from contracts import JobDeleted, JobEvent, WebhookAttempted
from edge.readmodel.reading import QueuedFacts
from edge.readmodel.views import JobView, apply, with_attempt

Folded = JobEvent | QueuedFacts | WebhookAttempted


@dataclass
class JobState:
    """A job's state inside one fold: its view and whether it was deleted (a tombstone row)."""

    view: JobView
    deleted: bool = False

    @property
    def kept_finished(self) -> bool:
        return self.view.finished and not self.deleted


def changed_jobs(known: dict[str, JobState], events: Iterable[Folded]) -> dict[str, JobState]:
    """The pure part of a fold: every job the events change, in its new state."""
    changed: dict[str, JobState] = {}
    for folded in events:
        job_id = folded.job_id
        job = changed.get(job_id) or known.get(job_id)
        if isinstance(folded, JobDeleted):
            if job is None or not job.deleted:
                changed[job_id] = JobState(job.view if job else JobView(job_id=job_id), deleted=True)
            continue
        if job is not None and job.deleted:
            continue  # a tombstone: late or republished events of a deleted job change nothing
        if isinstance(folded, WebhookAttempted):
            if job is not None:  # the log of a job no longer kept is not kept either
                changed[job_id] = replace(job, view=with_attempt(job.view, folded))
            continue
        view = job.view if job else JobView(job_id=job_id)
        updated = apply(view, folded)
        if updated is not view or job is None:
            changed[job_id] = JobState(updated)
    return changed
