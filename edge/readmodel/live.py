"""Progress of running jobs, kept in memory only: it comes from the live exchange, changes every step and
means nothing once the job has ended, so the database never sees it."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace

from contracts import JobProgressed
from edge.readmodel.views import JobView, Stage

# Jobs whose end this edge never saw (deleted, trimmed, lost) must not pin their previews for ever.
MAX_RUNNING = 10_000


@dataclass(frozen=True)
class Progress:
    seq: int
    progress: int
    status: str | None
    preview: str | None


class LiveProgress:
    """The latest step of each running job; an ended job's entry is dropped with its preview."""

    def __init__(self, max_running: int = MAX_RUNNING) -> None:
        self.max_running = max_running
        self._jobs: OrderedDict[str, Progress] = OrderedDict()

    def step(self, event: JobProgressed) -> None:
        known = self._jobs.get(event.job_id)
        if known is not None and event.seq <= known.seq:
            return
        preview = event.preview or (known.preview if known else None)
        self._jobs[event.job_id] = Progress(event.seq, event.progress, event.status, preview)
        self._jobs.move_to_end(event.job_id)
        while len(self._jobs) > self.max_running:
            self._jobs.popitem(last=False)

    def ended(self, job_id: str) -> None:
        self._jobs.pop(job_id, None)

    def overlay(self, view: JobView) -> JobView:
        """The stored view with its newest step on top, while the job runs."""
        step = self._jobs.get(view.job_id)
        if step is None or view.finished or step.seq <= view.last_seq:
            return view
        return replace(
            view, stage=Stage.RUNNING, progress=step.progress, status=step.status, preview=step.preview
        )

    def __len__(self) -> int:
        return len(self._jobs)
