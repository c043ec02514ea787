"""POST /v1|v2/generation/*: validate, store the input images, publish the job, answer at once or wait.

Answers (spec §6): a JSON list (sync), the job object (`async_process`), or, in streaming mode
(`Accept: image/png` header or `?accept=image/png`, the query winning), the first image as PNG bytes.

A failed sync job keeps Fooocus-API's list shape (one item, `finish_reason` ERROR) and says why in the
`X-Fleet-Error` header (`{code}: {message}`); in streaming mode it is a 500 JSON
`{"detail": ..., "code": ..., "finish_reason": "ERROR"}`; the async job object carries it in `job_status`.

Every answer about an accepted job names it in the `X-Fleet-Job-Id` header. With an `Idempotency-Key`
header, a repeat of the request answers for the job the first one made (waiting for it when sync), and
the same key with a different request is a 409 (`edge.idempotency`). A `webhook_url` must pass the
same address rules as input URLs (`edge.egress`), else it is a 422 before anything is queued.
"""

from __future__ import annotations

import asyncio
import io
import re
import uuid

from aiormq.exceptions import AMQPError
from PIL import Image
from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json, raw, text

from contracts import GenerationParams, ImageInputs, JobQueued, JobType
from edge import egress, idempotency
from edge.api.openapi_docs import documented
from edge.errors import BrokerUnavailable
from edge.inputs import ImageSet, InputImageError, with_keys
from edge.parsing import json_body
from edge.readmodel import JobView, Stage
from edge.results import queue_full
from edge.schemas.requests import CommonRequest
from edge.services import services
from edge.settings import EdgeSettings

bp = Blueprint("generation", url_prefix="/generation", version=1)
STREAMING = "image/png"
ERROR_HEADER = "X-Fleet-Error"
JOB_HEADER = "X-Fleet-Job-Id"
KEY_LOCKS = idempotency.KeyLocks()


def streaming(request: Request) -> bool:
    """Fooocus-API's streaming switch: `?accept=` overrides the `Accept` header; exact match only."""
    chosen = request.args.get("accept")
    if chosen is None:
        chosen = request.headers.get("accept")
    return chosen == STREAMING


def error_reason(view: JobView) -> str:
    """Why a job ended without images, as one header-safe line."""
    if view.outcome == "job.cancelled":
        reason = view.status or "cancelled"
    else:
        reason = f"{view.error_code or 'error'}: {view.error_message or view.status or 'failed'}"
    return re.sub(r"[^\x20-\x7e]", " ", reason)[:500]


async def submit(
    request: Request,
    job_type: JobType,
    body: CommonRequest,
    inputs: ImageInputs | None = None,
    images: ImageSet | None = None,
    params: GenerationParams | None = None,
) -> HTTPResponse:
    """Accept one job: refuse it when the queue is full; else check and store its images, publish it,
    and answer at once or when it finishes. `inputs` names images by their `images` placeholders.
    A repeat under the same `Idempotency-Key` answers for the job the key already made."""
    fleet = services(request)
    await check_webhook(body.webhook_url, fleet.settings)
    if streaming(request):
        body = body.model_copy(update={"image_number": 1})
    key = idempotency.scoped_key(request)
    if key is None:
        accepted = await _accept(request, job_type, body, inputs, images, params, None)
    else:
        digest = idempotency.request_digest(request, streaming(request))
        async with KEY_LOCKS.hold(key):
            accepted = await fleet.model.by_key(key)
            if accepted is None:
                accepted = await _accept(request, job_type, body, inputs, images, params, (key, digest))
            elif accepted.request_digest != digest:
                raise idempotency.KeyConflict(
                    f"This Idempotency-Key made job {accepted.job_id} from a different request."
                )
    if isinstance(accepted, HTTPResponse):
        return accepted
    return await _answer(request, accepted, body.async_process)


async def _accept(
    request: Request,
    job_type: JobType,
    body: CommonRequest,
    inputs: ImageInputs | None,
    images: ImageSet | None,
    params: GenerationParams | None,
    key: tuple[str, str] | None,
) -> JobView | HTTPResponse:
    """Publish a new job and fold it; a full queue answers Fooocus-API's QUEUE_IS_FULL instead."""
    fleet = services(request)
    if await fleet.model.unfinished_count() >= fleet.settings.queue_size:
        if streaming(request) and not body.async_process:
            return text("QUEUE_IS_FULL", status=409, content_type="text/plain")
        items, full = queue_full(job_type.value)
        return json(full.model_dump() if body.async_process else [i.model_dump() for i in items])
    job_id = str(uuid.uuid4())
    inputs = inputs or ImageInputs()
    if images is not None and images.pending:
        await images.load(fleet.fetcher, fleet.settings)
        inputs = with_keys(inputs, await images.store(fleet.store, job_id))
    resolved = params or body.generation_params()
    if streaming(request):
        resolved = resolved.model_copy(update={"image_number": 1})
    job = JobQueued(
        job_id=job_id,
        seq=0,
        job_type=job_type,
        params=resolved,
        inputs=inputs,
        require_base64=body.require_base64,
        webhook_url=body.webhook_url or None,
        idempotency_key=key[0] if key else None,
        request_digest=key[1] if key else None,
    )
    try:
        await fleet.bus.submit(job)
    except (AMQPError, ConnectionError, TimeoutError) as error:
        raise BrokerUnavailable() from error
    # The log will deliver it too; folding it now lets this edge answer for the job at once.
    return await fleet.model.apply(job)


async def _answer(request: Request, view: JobView, async_process: bool) -> HTTPResponse:
    """The job object at once (async), or the results once it ends (sync, streaming)."""
    fleet = services(request)
    headers = {JOB_HEADER: view.job_id}
    if async_process:
        return json((await fleet.renderer.job(view)).model_dump(), headers=headers)
    finished = await fleet.model.wait_finished(view.job_id, fleet.settings.sync_timeout_s)
    if finished is None or not finished.finished:
        return json((await fleet.renderer.job(view)).model_dump(), status=504, headers=headers)
    if streaming(request):
        answer = await _stream_answer(request, finished)
        answer.headers[JOB_HEADER] = view.job_id
        return answer
    items = [item.model_dump() for item in await fleet.renderer.items(finished)]
    if not finished.images:
        headers[ERROR_HEADER] = error_reason(finished)
    return json(items, headers=headers)


async def check_webhook(given: str | None, settings: EdgeSettings) -> None:
    """A request's own webhook target must pass the egress policy now, so a refused one is a 422 naming
    `webhook_url` rather than a webhook that silently never comes. The `--webhook-url` default is the
    operator's configuration, trusted like any other setting (it may well be an internal address)."""
    if not given:
        return
    try:
        await egress.pin_webhook(given, settings)
    except egress.UrlRefused as refused:
        error = InputImageError(("body", "webhook_url"), refused.message, refused.kind)
        raise error.to_request_error() from None


async def _stream_answer(request: Request, view: JobView) -> HTTPResponse:
    """Streaming mode: the first image as PNG; a stop is 400 `USER_CANCEL`, a failure a 500 saying why."""
    if view.images:
        data = await services(request).store.get(view.images[0].key)
        return raw(await asyncio.to_thread(_as_png, data), content_type="image/png")
    if view.outcome == "job.cancelled":
        return text("USER_CANCEL", status=400, content_type="text/plain")
    detail = {"detail": error_reason(view), "code": view.error_code, "finish_reason": "ERROR"}
    if view.stage is Stage.SUCCESS:
        detail["detail"] = "the job finished without images"
    return json(detail, status=500, headers={ERROR_HEADER: str(detail["detail"])})


def _as_png(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        out = io.BytesIO()
        image.save(out, format="PNG")
        return out.getvalue()


@bp.post("/text-to-image")
@documented(CommonRequest, False, "Text to image (JSON)")
async def text_to_image(request: Request) -> HTTPResponse:
    """POST /v1/generation/text-to-image"""
    return await submit(request, JobType.TEXT_TO_IMAGE, json_body(request, CommonRequest))


__all__ = ["ERROR_HEADER", "JOB_HEADER", "bp", "streaming", "submit"]
