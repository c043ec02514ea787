"""Interrupting the job that is running now, from the event loop, at the engine's next step; and
remembering cancelled jobs, so one that is dequeued later never runs."""

from __future__ import annotations

import threading


class JobInterrupted(Exception):
    """Raised inside the engine's step callback to leave the diffusion loop at once."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InterruptSwitch:
    """One switch per worker: armed for the running job, tripped by a stop or cancel."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._job_id: str | None = None
        self._reason: str | None = None
        self._cancelled: dict[str, str] = {}  # job id -> reason, from the cancels stream

    @property
    def current_job(self) -> str | None:
        return self._job_id

    def arm(self, job_id: str) -> None:
        """The job starts running; a cancel that came while it was being prepared stops it at step one."""
        with self._lock:
            self._job_id, self._reason = job_id, self._cancelled.get(job_id)

    def disarm(self) -> None:
        with self._lock:
            self._job_id, self._reason = None, None

    def trip(self, reason: str, job_id: str | None = None) -> bool:
        """Stop the running job (any job when `job_id` is None); False when nothing matched.

        Unlike Fooocus-API, a stop while idle does nothing: it must not hit a later job.
        """
        with self._lock:
            if self._job_id is None or (job_id is not None and job_id != self._job_id):
                return False
            self._reason = reason
            return True

    def cancel(self, job_id: str, reason: str) -> None:
        """Cancel one job for good: stop it if it runs now, and never let it start later."""
        with self._lock:
            self._cancelled[job_id] = reason
            if self._job_id == job_id:
                self._reason = reason

    def cancelled(self, job_id: str) -> str | None:
        """Why the job was cancelled, or None."""
        with self._lock:
            return self._cancelled.get(job_id)

    def check(self) -> None:
        """Called at every step from the engine thread."""
        reason = self._reason
        if reason is not None:
            raise JobInterrupted(reason)
