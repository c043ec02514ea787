"""POST /v1/tools/*: describe an image, generate a mask. Answered by any worker over an RPC, not queued."""

from __future__ import annotations

import base64
import contextlib
import uuid

from aiormq.exceptions import AMQPError
from pydantic import ValidationError
from sanic import Blueprint, Request
from sanic.response import JSONResponse, json
from sanic_ext import openapi

from contracts import DescribeImage, GenerateMask, ToolRequest, ToolResult
from edge.errors import EdgeError
from edge.inputs import ImageSet
from edge.parsing import json_body, query
from edge.schemas.forms import form_file
from edge.schemas.requests import DescribeQuery, GenerateMaskRequest
from edge.services import Services, services
from storage import ObjectNotFound, StorageError, input_key

bp = Blueprint("tools", url_prefix="/tools", version=1)


class NoWorker(EdgeError):
    status_code = 503
    message = "No worker answered the tool request in time; retry shortly."


class ToolFailed(EdgeError):
    """A worker answered with an error, e.g. its model file is missing."""

    status_code = 503


class BadToolReply(EdgeError):
    status_code = 502
    message = "A worker sent a reply this edge cannot read."


async def _ask(fleet: Services, request: ToolRequest) -> ToolResult:
    try:
        result = await fleet.bus.tool(request, fleet.settings.tool_timeout_s)
    except TimeoutError:
        raise NoWorker() from None
    except (AMQPError, ConnectionError) as error:
        raise NoWorker("The tool queue is unavailable; retry shortly.") from error
    except ValidationError:
        raise BadToolReply() from None
    if result.error:
        raise ToolFailed(f"{request.type}: {result.error}")
    return result


async def _stage(fleet: Services, images: ImageSet, tool_id: str) -> str:
    await images.load(fleet.fetcher, fleet.settings)
    return (await images.store(fleet.store, tool_id))["image"]


@bp.post("/describe-image")
@openapi.body(
    {
        "multipart/form-data": {
            "type": "object",
            "properties": {"image": {"type": "string", "format": "binary"}},
        }
    }
)
@openapi.parameter("image_type", str, "query", description="Photo (default) or Anime; `type` is an alias.")
@openapi.response(
    200, {"application/json": {"type": "object", "properties": {"describe": {"type": "string"}}}}
)
async def describe_image(request: Request) -> JSONResponse:
    """POST /v1/tools/describe-image: multipart file `image`; query `image_type` (or `type`)."""
    kind = query(request, DescribeQuery).chosen
    fleet = services(request)
    images = ImageSet()
    images.add("image", form_file(request, "image"), ("body", "image"), required=True)
    tool_id = f"tool-{uuid.uuid4()}"
    key = await _stage(fleet, images, tool_id)
    result = await _ask(fleet, DescribeImage(image_key=key, image_type=kind))
    await _forget(fleet, key)
    return json({"describe": result.text or ""})


@bp.post("/generate_mask")
@openapi.body({"application/json": GenerateMaskRequest}, required=True)
@openapi.response(200, {"application/json": str}, "Base64 PNG mask (no data: prefix), as a JSON string")
async def generate_mask(request: Request) -> JSONResponse:
    """POST /v1/tools/generate_mask: JSON `GenerateMaskRequest`; answers a JSON string of base64 PNG."""
    body = json_body(request, GenerateMaskRequest)
    fleet = services(request)
    images = ImageSet()
    images.add("image", body.image, ("body", "image"), required=True)
    tool_id = f"tool-{uuid.uuid4()}"
    key = await _stage(fleet, images, tool_id)
    mask_key = input_key(tool_id, "mask.png")
    fields = body.model_dump(exclude={"image"})
    result = await _ask(fleet, GenerateMask(image_key=key, mask_key=mask_key, **fields))
    try:
        mask = await fleet.store.get(result.mask_key or mask_key)
    except (ObjectNotFound, StorageError):
        raise BadToolReply("The worker reported a mask that is not in storage.") from None
    await _forget(fleet, key, result.mask_key or mask_key)
    return json(base64.b64encode(mask).decode())


async def _forget(fleet: Services, *keys: str) -> None:
    """A tool's images are needed only for the call; removing them is best effort."""
    for key in keys:
        with contextlib.suppress(StorageError):
            await fleet.store.delete(key)
