"""The OpenAPI document where FastAPI (and so Fooocus-API) serves it: `/openapi.json` and `/redoc`,
beside sanic-ext's own `/docs/openapi.json`, `/docs/redoc` and Swagger UI at `/docs`."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, JSONResponse, json, redirect
from sanic_ext import openapi
from sanic_ext.extensions.openapi.builders import SpecificationBuilder

bp = Blueprint("api_docs")


@bp.get("/openapi.json")
@openapi.exclude()
async def openapi_document(request: Request) -> JSONResponse:
    """The same document as /docs/openapi.json, built by sanic-ext."""
    return json(SpecificationBuilder().build(request.app).serialize())


@bp.get("/redoc")
@openapi.exclude()
async def redoc(request: Request) -> HTTPResponse:
    return redirect("/docs/redoc")
