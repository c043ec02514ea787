"""Interrupting the job that is running now, from the event loop, at the engine's next step; and
remembering recent cancels, so a job cancelled just before it is dequeued never runs.

The memory is bounded: a cancel is forgotten when its job ends here, and any cancel after `memory_s`
(the cancel's marker in storage keeps it durable for a job that waits longer; `worker.runner`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

MEMORY_S = 3600.0


class JobInterrupted(Exception):
    """Raised inside the engine's step callback to leave the diffusion loop at once."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InterruptSwitch:
    """One switch per worker: armed for the running job, tripped by a stop or cancel."""

    def __init__(self, memory_s: float = MEMORY_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._job_id: str | None = None
        self._reason: str | None = None
        self._cancelled: dict[str, tuple[str, float]] = {}  # job id -> (reason, when), oldest first
        self.memory_s = memory_s
        self._clock = clock

    @property
    def current_job(self) -> str | None:
        return self._job_id

    def arm(self, job_id: str) -> None:
        """The job starts running; a cancel that came while it was being prepared stops it at step one."""
        with self._lock:
            self._job_id, self._reason = job_id, self._reason_of(job_id)

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
        """Cancel one job: stop it if it runs now, and do not let it start within `memory_s`."""
        with self._lock:
            now = self._clock()
            self._cancelled.pop(job_id, None)
            self._cancelled[job_id] = (reason, now)
            while self._cancelled:  # insertion order is age order: drop from the oldest
                oldest = next(iter(self._cancelled))
                if now - self._cancelled[oldest][1] <= self.memory_s:
                    break
                del self._cancelled[oldest]
            if self._job_id == job_id:
                self._reason = reason

    def cancelled(self, job_id: str) -> str | None:
        """Why the job was cancelled, or None."""
        with self._lock:
            return self._reason_of(job_id)

    def forget(self, job_id: str) -> None:
        """The job ended: its cancel is needed no more."""
        with self._lock:
            self._cancelled.pop(job_id, None)

    @property
    def remembered(self) -> int:
        return len(self._cancelled)

    def _reason_of(self, job_id: str) -> str | None:
        entry = self._cancelled.get(job_id)
        if entry is None or self._clock() - entry[1] > self.memory_s:
            return None
        return entry[0]

    def check(self) -> None:
        """Called at every step from the engine thread."""
        reason = self._reason
        if reason is not None:
            raise JobInterrupted(reason)
