"""Response bodies in Fooocus-API's shapes (spec §6)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel


class FinishReason(StrEnum):
    SUCCESS = "SUCCESS"
    QUEUE_IS_FULL = "QUEUE_IS_FULL"
    USER_CANCEL = "USER_CANCEL"
    ERROR = "ERROR"


class GeneratedImageResult(BaseModel):
    """One item of a sync result or of `job_result`; `seed` is a decimal string."""

    base64: str | None = None
    url: str | None = None
    seed: str = ""
    finish_reason: FinishReason = FinishReason.SUCCESS


class AsyncJobResponse(BaseModel):
    """The job object of async submits and `query-job`."""

    job_id: str
    job_type: str
    job_stage: str
    job_progress: int = 0
    job_status: str | None = None
    job_step_preview: str | None = None
    job_result: list[GeneratedImageResult] | None = None


class JobQueueInfo(BaseModel):
    running_size: int
    finished_size: int
    last_job_id: str | None


class JobHistoryInfo(BaseModel):
    job_id: str
    in_queue_mills: int
    start_mills: int
    finish_mills: int
    is_finished: bool


class JobHistoryResponse(BaseModel):
    queue: list[JobHistoryInfo]
    history: list[JobHistoryInfo]


class Deleted(BaseModel):
    """`job-history?delete=true`: "Deleted", or "Not found" for an unknown or unfinished job."""

    message: str


class StopResponse(BaseModel):
    msg: str = "success"


class CancelAccepted(BaseModel):
    """202 of a cancel: the request is logged; the job's `JobCancelled` follows."""

    job_id: str
    job_stage: str
    cancel_requested: bool = True


class JobEnded(BaseModel):
    """409 of a cancel: the job had already ended, as `job_stage` says."""

    detail: str
    job_id: str
    job_stage: str


class WebhookAttemptInfo(BaseModel):
    """One webhook attempt of a job's delivery log."""

    webhook_id: str
    attempt: int
    target: str
    attempted_at: str
    duration_ms: int
    status_code: int | None = None
    error: str | None = None
    outcome: str
    next_attempt_at: str | None = None


class WebhookLog(BaseModel):
    """A job's webhook deliveries. `state`: none (no target), pending, retrying, delivered, failed."""

    job_id: str
    state: str
    attempts: list[WebhookAttemptInfo]
