"""The edge's read model: every job's view, kept current from the event log, with waiting."""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from dataclasses import dataclass

from contracts import JobDeleted, JobEvent, JobQueued, WebhookAttempted
from edge.projections.jobs import JobView, apply, with_attempt


@dataclass(frozen=True)
class HistoryPage:
    """Unfinished jobs in queue order, and one page of finished jobs, newest first."""

    queue: list[JobView]
    history: list[JobView]


class ProjectionStore:
    """Applies events in arrival order; reads never touch a worker.

    `history_limit` keeps at most that many finished jobs (0 = all), like Fooocus-API's
    `--queue-history`; since the log replays identically, every edge trims the same jobs.
    Idempotency keys are indexed from `JobQueued` the same way: the first job logged with a key owns
    it, for as long as that job is kept.
    """

    def __init__(self, history_limit: int = 0) -> None:
        self.history_limit = history_limit
        self._jobs: OrderedDict[str, JobView] = OrderedDict()  # in order of JobQueued
        self._finished: OrderedDict[str, None] = OrderedDict()  # in order of finishing
        self._changed = asyncio.Condition()
        self._deleted: set[str] = set()
        self._keys: dict[str, str] = {}  # idempotency key -> job id
        self.last_job_id: str | None = None

    def get(self, job_id: str) -> JobView | None:
        return self._jobs.get(job_id)

    def by_key(self, idempotency_key: str) -> JobView | None:
        """The job first accepted under this (scoped) idempotency key, while it is kept."""
        job_id = self._keys.get(idempotency_key)
        return None if job_id is None else self._jobs.get(job_id)

    async def record_webhook(self, event: WebhookAttempted) -> None:
        """Add a webhook attempt to its job's delivery log (ignored for a job no longer kept)."""
        view = self._jobs.get(event.job_id)
        if view is not None:
            self._jobs[event.job_id] = with_attempt(view, event)

    async def apply(self, event: JobEvent) -> JobView:
        """Fold one event and wake everyone waiting on a change. `JobDeleted` removes the job for good:
        any later event of it (a republished terminal event, late progress) is ignored."""
        if isinstance(event, JobDeleted):
            return await self._delete(event.job_id)
        if event.job_id in self._deleted:
            return JobView(job_id=event.job_id)
        current = self._jobs.get(event.job_id) or JobView(job_id=event.job_id)
        updated = apply(current, event)
        if updated is not current:
            self._jobs[event.job_id] = updated
            if isinstance(event, JobQueued):
                self.last_job_id = event.job_id
                if event.idempotency_key is not None:
                    self._keys.setdefault(event.idempotency_key, event.job_id)
            if updated.finished and not current.finished:
                self._finished[event.job_id] = None
                self._trim()
            async with self._changed:
                self._changed.notify_all()
        return updated

    async def _delete(self, job_id: str) -> JobView:
        self._deleted.add(job_id)
        view = self._jobs.pop(job_id, None) or JobView(job_id=job_id)
        self._finished.pop(job_id, None)
        self._forget_key(view)
        async with self._changed:
            self._changed.notify_all()
        return view

    def _trim(self) -> None:
        while self.history_limit and len(self._finished) > self.history_limit:
            oldest, _ = self._finished.popitem(last=False)
            view = self._jobs.pop(oldest, None)
            if view is not None:
                self._forget_key(view)

    def _forget_key(self, view: JobView) -> None:
        # A job that is gone frees its key: a repeat then starts a new job rather than finding nothing.
        if view.idempotency_key is not None and self._keys.get(view.idempotency_key) == view.job_id:
            del self._keys[view.idempotency_key]

    async def wait_finished(self, job_id: str, timeout: float | None) -> JobView | None:  # noqa: ASYNC109
        """Wait until the job has its terminal event; None on timeout (or if it is unknown then)."""

        def done() -> bool:
            view = self._jobs.get(job_id)
            return view is not None and view.finished

        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait_for(done), timeout)
        return self._jobs.get(job_id)

    def unfinished(self) -> list[JobView]:
        return [view for view in self._jobs.values() if not view.finished and view.queued_at is not None]

    @property
    def finished_count(self) -> int:
        return len(self._finished)

    def page(self, page: int, page_size: int, job_id: str | None = None) -> HistoryPage:
        """Fooocus-API's job-history: filtered by `job_id` when given, else paged (which it never did)."""
        if job_id is not None:
            view = self._jobs.get(job_id)
            views = [view] if view is not None else []
            return HistoryPage(
                queue=[v for v in views if not v.finished], history=[v for v in views if v.finished]
            )
        newest_first = [self._jobs[j] for j in reversed(self._finished)]
        start = page * page_size
        return HistoryPage(queue=self.unfinished(), history=newest_first[start : start + page_size])
