"""Turning engine steps into throttled `JobProgressed` events."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from contracts import JobProgressed, job_seq

# Fooocus reports 0-15 % for preparation and maps sampling onto 15-100 %.
PREPARE_SHARE = 15


@dataclass
class ProgressThrottle:
    """Lets a step through at most every `interval_s`, and always the first and last step of an image."""

    interval_s: float
    clock: Callable[[], float] = time.monotonic
    _last: float = float("-inf")

    def allow(self, step: int, total: int) -> bool:
        now = self.clock()
        if step in (1, total) or now - self._last >= self.interval_s:
            self._last = now
            return True
        return False


def percent(image_index: int, image_count: int, step: int, total_steps: int) -> int:
    """Overall progress of a multi-image job, in Fooocus's 15-100 band."""
    done = image_index * total_steps + step
    return int(PREPARE_SHARE + (100 - PREPARE_SHARE) * done / max(1, image_count * total_steps))


@dataclass
class ProgressEvents:
    """Numbers a job's progress events within one delivery attempt."""

    job_id: str
    attempt: int
    _n: int = 1

    def next_seq(self) -> int:
        self._n += 1
        return job_seq(self.attempt, self._n)

    def step(self, progress: int, status: str, preview: str | None) -> JobProgressed:
        return JobProgressed(
            job_id=self.job_id, seq=self.next_seq(), progress=progress, status=status, preview=preview
        )
