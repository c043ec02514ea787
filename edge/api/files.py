"""GET /files/{date}/{name}: result images streamed from object storage, or converted to the image type
the `Accept` header asks for (PNG, JPEG, WebP) as Fooocus-API does; and the root routes (/ping, /ready, /).
"""

from __future__ import annotations

import asyncio
import io

from PIL import Image
from sanic import Blueprint, Request
from sanic.response import HTTPResponse, JSONResponse, html, json, raw
from sanic_ext import openapi

from edge.api.openapi_docs import ERROR_SCHEMA
from edge.catchup import CatchingUp, catching_up
from edge.errors import NotFound
from edge.services import services
from storage import ObjectNotFound, keys

bp = Blueprint("files")
CHUNK = 256 * 1024
CONVERTIBLE = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}


def wanted_type(accept: str, stored: str) -> str | None:
    """The type to convert to: the first type in `Accept` this edge serves, None when that is the stored
    one (or any: `*/*`, `image/*`, no header), so the file is streamed as it is."""
    for part in accept.split(","):
        media = part.split(";", 1)[0].strip().lower()
        if media in ("", "*/*", "image/*", stored):
            return None
        if media in CONVERTIBLE:
            return media
    return None


def _converted(data: bytes, media: str) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        out = io.BytesIO()
        image.convert("RGB" if media == "image/jpeg" else image.mode).save(out, format=CONVERTIBLE[media])
        return out.getvalue()


IMAGE = {"type": "string", "format": "binary"}
READY = {
    "type": "object",
    "properties": {"ready": {"type": "boolean"}, "log_position": {"type": "integer"}},
}


@bp.get("/files/<day:str>/<name:str>")
@openapi.summary("A result image, as stored or converted to the first type Accept names")
@openapi.response(200, {media: IMAGE for media in CONVERTIBLE}, "The image")
@openapi.response(404, {"application/json": ERROR_SCHEMA}, "No such file")
async def get_file(request: Request, day: str, name: str) -> HTTPResponse:
    """GET /files/{YYYY-MM-DD}/{name}"""
    try:
        key = keys.file_key(day, name)
    except ValueError:
        raise NotFound() from None
    store = services(request).store
    try:
        info = await store.stat(key)
    except ObjectNotFound:
        raise NotFound() from None
    stored = info.content_type or "application/octet-stream"
    convert_to = wanted_type(request.headers.get("accept", ""), stored) if stored in CONVERTIBLE else None
    if convert_to is not None:
        data = await asyncio.to_thread(_converted, await store.get(key), convert_to)
        return raw(data, content_type=convert_to)
    response = await request.respond(content_type=stored)
    async for chunk in store.iter_chunks(key, CHUNK):
        await response.send(chunk)
    await response.eof()
    return response


@bp.get("/ping")
@openapi.summary("Liveness")
@openapi.response(200, {"application/json": {"type": "string", "enum": ["pong"]}}, "pong")
async def ping(request: Request) -> JSONResponse:
    """GET /ping"""
    return json("pong")


@bp.get("/ready")
@openapi.summary("Readiness: whether this edge has folded the log up to its start")
@openapi.response(200, {"application/json": READY}, "Ready, and the log position folded")
@openapi.response(503, {"application/json": ERROR_SCHEMA}, "Still catching up with the log (Retry-After)")
async def ready(request: Request) -> JSONResponse:
    """GET /ready: 200 once this edge has folded the log up to its start (a readiness probe); 503 while
    it catches up. Open without the API key, like /ping's liveness, for load balancers."""
    if catching_up(request):
        raise CatchingUp()
    return json({"ready": True, "log_position": await services(request).model.position()})


@bp.get("/")
@openapi.summary("A link to the API documentation")
@openapi.response(200, {"text/html": {"type": "string"}}, "An HTML page")
async def home(request: Request) -> HTTPResponse:
    """GET /"""
    return html('Swagger-UI to: <a href="/docs">/docs</a>')
