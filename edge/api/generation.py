"""POST /v1/generation/*: validate, publish the job, then answer at once or wait for it."""

from __future__ import annotations

import uuid

from aiormq.exceptions import AMQPError
from sanic import Blueprint, Request
from sanic.response import JSONResponse, json

from contracts import JobQueued, JobType
from edge.errors import BrokerUnavailable
from edge.parsing import json_body
from edge.results import queue_full
from edge.schemas.requests import CommonRequest
from edge.services import services

bp = Blueprint("generation", url_prefix="/generation", version=1)


async def submit(request: Request, job_type: JobType, body: CommonRequest) -> JSONResponse:
    """Accept one job: refuse it when the queue is full, else publish it and answer."""
    fleet = services(request)
    if len(fleet.projections.unfinished()) >= fleet.settings.queue_size:
        items, job = queue_full(job_type.value)
        return json(job.model_dump() if body.async_process else [i.model_dump() for i in items])
    job = JobQueued(
        job_id=str(uuid.uuid4()),
        seq=0,
        job_type=job_type,
        params=body.generation_params(),
        require_base64=body.require_base64,
        webhook_url=body.webhook_url or None,
    )
    try:
        await fleet.bus.submit(job)
    except (AMQPError, ConnectionError, TimeoutError) as error:
        raise BrokerUnavailable() from error
    # The log will deliver it too; folding it now lets this edge answer for the job at once.
    view = await fleet.projections.apply(job)
    if body.async_process:
        return json((await fleet.renderer.job(view)).model_dump())
    finished = await fleet.projections.wait_finished(job.job_id, fleet.settings.sync_timeout_s)
    if finished is None or not finished.finished:
        return json((await fleet.renderer.job(view)).model_dump(), status=504)
    return json([item.model_dump() for item in await fleet.renderer.items(finished)])


@bp.post("/text-to-image")
async def text_to_image(request: Request) -> JSONResponse:
    """POST /v1/generation/text-to-image"""
    return await submit(request, JobType.TEXT_TO_IMAGE, json_body(request, CommonRequest))
