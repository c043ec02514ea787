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


class StopResponse(BaseModel):
    msg: str = "success"
