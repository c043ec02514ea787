"""GET /files/{date}/{name}: result images streamed from object storage; and the root routes (/ping,
/ready, /)."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, JSONResponse, html, json

from edge.catchup import CatchingUp, catching_up
from edge.errors import NotFound
from edge.services import services
from storage import ObjectNotFound, keys

bp = Blueprint("files")
CHUNK = 256 * 1024


@bp.get("/files/<day:str>/<name:str>")
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
    response = await request.respond(content_type=info.content_type or "application/octet-stream")
    async for chunk in store.iter_chunks(key, CHUNK):
        await response.send(chunk)
    await response.eof()
    return response


@bp.get("/ping")
async def ping(request: Request) -> JSONResponse:
    """GET /ping"""
    return json("pong")


@bp.get("/ready")
async def ready(request: Request) -> JSONResponse:
    """GET /ready: 200 once this edge has folded the log up to its start (a readiness probe); 503 while
    it catches up. Open without the API key, like /ping's liveness, for load balancers."""
    if catching_up(request):
        raise CatchingUp()
    return json({"ready": True, "log_position": await services(request).model.position()})


@bp.get("/")
async def home(request: Request) -> HTTPResponse:
    """GET /"""
    return html('Swagger-UI to: <a href="/docs">/docs</a>')
