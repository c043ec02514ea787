"""OpenAPI documentation of the image endpoints through sanic-ext: request bodies as pydantic's JSON
schemas (inlined, as sanic-ext embeds them) and the answers each route gives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, TypeAdapter
from sanic_ext import openapi

from edge import idempotency
from edge.schemas.responses import AsyncJobResponse, GeneratedImageResult


def inline_refs(schema: Any, defs: dict[str, Any]) -> Any:
    """A pydantic JSON schema with its `$ref`s resolved in place, as sanic-ext embeds schemas whole."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            return inline_refs(defs[schema["$ref"].rsplit("/", 1)[1]], defs)
        return {k: inline_refs(v, defs) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [inline_refs(item, defs) for item in schema]
    return schema


def schema_of(kind: Any) -> dict[str, Any]:
    raw = TypeAdapter(kind).json_schema()
    return inline_refs(raw, raw.get("$defs", {}))  # type: ignore[no-any-return]


ANSWER_SCHEMA = {"oneOf": [schema_of(list[GeneratedImageResult]), schema_of(AsyncJobResponse)]}
ERROR_SCHEMA = {"type": "object", "properties": {"detail": {}}}


def documented(body: type[BaseModel], form: bool, summary: str) -> Callable[[Any], Any]:
    """sanic-ext OpenAPI: the request body (JSON or multipart) and the answers."""
    content_type = "multipart/form-data" if form else "application/json"

    def decorate(handler: Any) -> Any:
        handler = openapi.body({content_type: schema_of(body)}, required=True)(handler)
        handler = openapi.response(
            200,
            {"application/json": ANSWER_SCHEMA, "image/png": {"type": "string", "format": "binary"}},
            "Result list (sync), job object (async_process) or PNG bytes (Accept: image/png)",
        )(handler)
        handler = openapi.response(422, {"application/json": ERROR_SCHEMA}, "Invalid field, named in loc")(
            handler
        )
        handler = openapi.response(
            504, {"application/json": schema_of(AsyncJobResponse)}, "Sync wait timed out"
        )(handler)
        return openapi.summary(summary)(idempotency.documented(handler))

    return decorate
