"""Events the read-model tests fold: one builder each, shared by the test files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contracts import (
    GenerationParams,
    JobFailed,
    JobQueued,
    JobStarted,
    JobSucceeded,
    JobType,
    OutputImage,
    job_seq,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def queued(
    job_id: str, key: str | None = None, digest: str | None = None, at: float | None = None
) -> JobQueued:
    """`at`: seconds after a fixed moment, for tests that depend on queue order."""
    moment = {} if at is None else {"occurred_at": T0 + timedelta(seconds=at)}
    return JobQueued(
        job_id=job_id,
        seq=0,
        job_type=JobType.TEXT_TO_IMAGE,
        params=GenerationParams(image_seed=1),
        idempotency_key=key,
        request_digest=digest,
        **moment,  # type: ignore[arg-type]
    )


def failed(job_id: str, at: float | None = None) -> JobFailed:
    moment = {} if at is None else {"occurred_at": T0 + timedelta(hours=1, seconds=at)}
    return JobFailed(job_id=job_id, seq=job_seq(1, 2), code="engine_error", message="no", **moment)  # type: ignore[arg-type]


def finished_job(job_id: str) -> list[JobQueued | JobStarted | JobSucceeded]:
    """A whole job as the log holds it: queued, started, succeeded with one image."""
    image = OutputImage(key=f"outputs/2026-01-01/{job_id}-0.png", seed=1)
    return [
        JobQueued(
            job_id=job_id, seq=0, job_type=JobType.TEXT_TO_IMAGE, params=GenerationParams(image_seed=1)
        ),
        JobStarted(job_id=job_id, seq=job_seq(1, 1), worker_id="w", attempt=1),
        JobSucceeded(job_id=job_id, seq=job_seq(1, 2), images=[image], worker_id="w", run_ms=5),
    ]
