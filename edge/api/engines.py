"""GET|POST /v1/engines/*: models the live workers announce, styles, refresh and memory release."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel
from sanic import Blueprint, Request
from sanic.response import JSONResponse, json
from sanic_ext import openapi

from contracts import RefreshModels, ReleaseMemory
from contracts.styles import STYLE_NAMES
from edge.services import Services, services

bp = Blueprint("engines", url_prefix="/engines", version=1)


class AllModelsResponse(BaseModel):
    model_filenames: list[str]
    lora_filenames: list[str]


def _models(fleet: Services) -> JSONResponse:
    models, loras = fleet.workers.models(datetime.now(UTC))
    return json(AllModelsResponse(model_filenames=models, lora_filenames=loras).model_dump())


@bp.get("/all-models")
@openapi.response(200, {"application/json": AllModelsResponse}, "Union of what live workers announce")
async def all_models(request: Request) -> JSONResponse:
    """GET /v1/engines/all-models: the checkpoints and LoRAs of the workers heard from lately."""
    return _models(services(request))


@bp.post("/refresh-models")
@openapi.response(200, {"application/json": AllModelsResponse}, "The lists after the workers rescanned")
async def refresh_models(request: Request) -> JSONResponse:
    """POST /v1/engines/refresh-models: every worker rescans; answers once each live one has reported."""
    fleet = services(request)
    now = datetime.now(UTC)
    live = {w.worker_id for w in fleet.workers.alive(now)}
    command = RefreshModels()
    await fleet.bus.command(command)
    await fleet.workers.wait_heard_since(command.occurred_at, live, fleet.settings.refresh_wait_s)
    return _models(fleet)


@bp.get("/styles")
@openapi.response(200, {"application/json": list[str]}, "Style names, in Fooocus's order")
async def styles(request: Request) -> JSONResponse:
    """GET /v1/engines/styles"""
    return json(list(STYLE_NAMES))


@bp.get("/clean_vram")
@openapi.response(200, {"application/json": dict}, '`{"message": "ok"}`')
async def clean_vram(request: Request) -> JSONResponse:
    """GET /v1/engines/clean_vram: every worker unloads its models."""
    await services(request).bus.command(ReleaseMemory())
    return json({"message": "ok"})
