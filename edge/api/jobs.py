"""Reading jobs: query-job, job-queue, job-history, a job's webhook deliveries; the global stop and
cancelling one job. The read model only.

`POST /v1/generation/job/{job_id}/cancel` answers 202 while the job has not ended (the cancel is in
the log; the job ends with exactly one `JobCancelled`: at its next step when running, when a worker
dequeues it when queued), 404 for an unknown job and 409 for one that already ended. Only a job that
finishes on its own before the request reaches its worker keeps its own terminal event.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from pydantic import BaseModel, Field
from sanic import Blueprint, Request
from sanic.response import JSONResponse, json
from sanic_ext import openapi

from edge.api.openapi_docs import ERROR_SCHEMA, answers, query_parameters
from edge.catchup import CatchingUp, catching_up
from edge.errors import BrokerUnavailable, CancelNotRecorded
from edge.parsing import query
from edge.readmodel import JobView
from edge.results import NOT_FOUND
from edge.schemas.responses import (
    AsyncJobResponse,
    CancelAccepted,
    Deleted,
    JobEnded,
    JobHistoryInfo,
    JobHistoryResponse,
    JobQueueInfo,
    StopResponse,
    WebhookAttemptInfo,
    WebhookLog,
)
from edge.services import services
from storage import StorageError, keys

bp = Blueprint("jobs", url_prefix="/generation", version=1)


class QueryJob(BaseModel):
    job_id: str
    require_step_preview: bool = False


class HistoryQuery(BaseModel):
    job_id: str | None = None
    page: int = Field(0, ge=0)
    page_size: int = Field(20, ge=1, le=1000)
    delete: bool = False


CATCHING_UP = "This edge is still folding the log and does not know the job yet (Retry-After)"
NO_SUCH_JOB = {"detail": "Job not found"}
NO_SUCH_JOB_SCHEMA = {"type": "object", "properties": {"detail": {"type": "string"}}}


@bp.get("/query-job")
@openapi.summary("A job's stage, progress, step preview and results")
@query_parameters(QueryJob)
@answers(200, AsyncJobResponse, "The job object")
@answers(404, AsyncJobResponse, "No such job: job_stage ERROR, job_status 'Job not found'")
@openapi.response(503, {"application/json": ERROR_SCHEMA}, CATCHING_UP)
async def query_job(request: Request) -> JSONResponse:
    """GET /v1/generation/query-job"""
    params = query(request, QueryJob)
    fleet = services(request)
    view = await fleet.model.get(params.job_id)
    if view is None:
        if catching_up(request):
            raise CatchingUp()  # it may be a job this edge has not folded yet
        return json(NOT_FOUND.model_dump(), status=404)
    return json((await fleet.renderer.job(view, params.require_step_preview)).model_dump())


@bp.get("/job-queue")
@openapi.summary("How many jobs are unfinished and finished, and the last job's id")
@answers(200, JobQueueInfo, "The counts")
async def job_queue(request: Request) -> JSONResponse:
    """GET /v1/generation/job-queue"""
    counts = await services(request).model.counts()
    info = JobQueueInfo(
        running_size=counts.running, finished_size=counts.finished, last_job_id=counts.last_job_id
    )
    return json(info.model_dump())


def _mills(moment: datetime | None) -> int:
    return int(moment.timestamp() * 1000) if moment else 0


def _history_info(view: JobView) -> JobHistoryInfo:
    return JobHistoryInfo(
        job_id=view.job_id,
        in_queue_mills=_mills(view.queued_at),
        start_mills=_mills(view.started_at),
        finish_mills=_mills(view.finished_at),
        is_finished=view.finished,
    )


@bp.get("/job-history")
@openapi.summary("Unfinished and finished jobs, a page at a time; or delete a finished job")
@query_parameters(HistoryQuery)
@answers(200, JobHistoryResponse | Deleted, "The page, or with delete=true the deletion's outcome")
async def job_history(request: Request) -> JSONResponse:
    """GET /v1/generation/job-history"""
    params = query(request, HistoryQuery)
    if params.delete:
        return await _delete(request, params.job_id)
    page = await services(request).model.page(params.page, params.page_size, params.job_id)
    body = JobHistoryResponse(
        queue=[_history_info(v) for v in page.queue], history=[_history_info(v) for v in page.history]
    )
    return json(body.model_dump())


async def _delete(request: Request, job_id: str | None) -> JSONResponse:
    """`delete=true&job_id=X`: a finished job leaves every edge's history (via the log) and its output
    and input files leave storage. Works without `--persistent` (Fooocus-API answered 500 there)."""
    fleet = services(request)
    view = await fleet.model.get(job_id) if job_id else None
    if view is None or not view.finished:
        return json(Deleted(message="Not found").model_dump())
    await fleet.bus.delete_job(view.job_id)
    for image in view.images:
        with contextlib.suppress(StorageError):
            await fleet.store.delete(image.key)
    for key in view.input_keys:
        with contextlib.suppress(StorageError):
            await fleet.store.delete(key)
    return json(Deleted(message="Deleted").model_dump())


@bp.post("/stop")
@openapi.summary("Stop the running job of every worker at its next step (to stop one job: its cancel)")
@answers(200, StopResponse, "The stop was sent")
async def stop(request: Request) -> JSONResponse:
    """POST /v1/generation/stop: interrupt the running jobs at their next step."""
    await services(request).bus.stop_running()
    return json(StopResponse().model_dump())


@bp.post("/job/<job_id:str>/cancel")
@openapi.summary("Cancel one job, queued or running, on whichever worker holds it")
@answers(202, CancelAccepted, "Cancel logged; a JobCancelled follows")
@openapi.response(404, {"application/json": NO_SUCH_JOB_SCHEMA}, "No such job")
@answers(409, JobEnded, "The job already ended")
@openapi.response(503, {"application/json": ERROR_SCHEMA}, "Storage or the broker is away: nothing recorded")
async def cancel_job(request: Request, job_id: str) -> JSONResponse:
    """POST /v1/generation/job/{job_id}/cancel"""
    fleet = services(request)
    view = await fleet.model.get(job_id)
    if view is None:
        return json(NO_SUCH_JOB, status=404)
    if view.finished:
        ended = JobEnded(detail="The job already ended.", job_id=job_id, job_stage=view.stage.value)
        return json(ended.model_dump(), status=409)
    if not view.cancel_requested:  # asking again is answered the same, without logging it twice
        try:
            # The marker first: a worker that dequeues the job later finds it, however long the job
            # waited; the log's cancel stops it where it runs now.
            await fleet.store.put(keys.cancel_key(job_id), b"cancelled", "text/plain")
        except StorageError as error:
            raise CancelNotRecorded("Storage is unavailable; the cancel was not recorded.") from error
        try:
            await fleet.bus.cancel(job_id)
        except ConnectionError as error:  # `BusUnavailable`: nothing was logged, the caller may retry
            raise BrokerUnavailable("The job queue is unavailable; the cancel was not recorded.") from error
    return json(CancelAccepted(job_id=job_id, job_stage=view.stage.value).model_dump(), status=202)


@bp.get("/job/<job_id:str>/webhooks")
@openapi.summary("A job's webhook delivery log: every attempt, its status or error and duration")
@answers(200, WebhookLog, "The attempts, oldest first")
@openapi.response(404, {"application/json": NO_SUCH_JOB_SCHEMA}, "No such job")
async def job_webhooks(request: Request, job_id: str) -> JSONResponse:
    """GET /v1/generation/job/{job_id}/webhooks"""
    fleet = services(request)
    view = await fleet.model.get(job_id)
    if view is None:
        return json(NO_SUCH_JOB, status=404)
    attempts = [
        WebhookAttemptInfo(
            webhook_id=a.webhook_id,
            attempt=a.attempt,
            target=a.target,
            attempted_at=a.attempted_at.isoformat(),
            duration_ms=a.duration_ms,
            status_code=a.status_code,
            error=a.error,
            outcome=a.outcome,
            next_attempt_at=a.next_attempt_at.isoformat() if a.next_attempt_at else None,
        )
        for a in view.webhooks
    ]
    if attempts:
        state = attempts[-1].outcome
    else:
        state = "pending" if view.webhook_url or fleet.settings.webhook_url else "none"
    return json(WebhookLog(job_id=job_id, state=state, attempts=attempts).model_dump())
