"""Events the projection tests fold: one builder each, shared by the test files."""

from __future__ import annotations

from contracts import GenerationParams, JobFailed, JobQueued, JobType, job_seq


def queued(job_id: str, key: str | None = None, digest: str | None = None) -> JobQueued:
    return JobQueued(
        job_id=job_id,
        seq=0,
        job_type=JobType.TEXT_TO_IMAGE,
        params=GenerationParams(image_seed=1),
        idempotency_key=key,
        request_digest=digest,
    )


def failed(job_id: str) -> JobFailed:
    return JobFailed(job_id=job_id, seq=job_seq(1, 2), code="engine_error", message="no")
