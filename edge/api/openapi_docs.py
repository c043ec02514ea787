"""OpenAPI documentation of the image endpoints through sanic-ext: request bodies as pydantic's JSON
schemas (inlined, as sanic-ext embeds them) and the answers each route gives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, TypeAdapter
from sanic_ext import openapi
from sanic_ext.extensions.openapi.types import Schema

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


SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf")
SUBSCHEMAS = ("items", "not", "additionalProperties")


def openapi30(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic (JSON Schema 2020-12) schema in OpenAPI 3.0's dialect, the one sanic-ext declares:
    `None` as `nullable` rather than a `{"type": "null"}` branch, `const` as a one-value `enum`,
    `examples` as one `example`. Values (defaults, enums) are left as they are."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties":
            out[key] = {name: openapi30(field) for name, field in value.items()}
        elif key in SUBSCHEMA_LISTS:
            out[key] = [openapi30(option) for option in value if option != {"type": "null"}]
            if len(out[key]) < len(value):
                out["nullable"] = True
        elif key in SUBSCHEMAS and isinstance(value, dict):
            out[key] = openapi30(value)
        elif key == "const":
            out["enum"] = [value]
        elif key == "examples" and isinstance(value, list):
            if value:
                out["example"] = value[0]
        else:
            out[key] = value
    for key in SUBSCHEMA_LISTS:
        if len(out.get(key, ())) == 1:  # `X | None`: the one schema left, made nullable
            out = {**out.pop(key)[0], **out}
    return out


def schema_of(kind: Any) -> dict[str, Any]:
    """The OpenAPI 3.0 schema of a pydantic model or type, `$ref`s inlined."""
    raw = TypeAdapter(kind).json_schema()
    return openapi30(inline_refs(raw, raw.get("$defs", {})))


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


def answers(status: int, kind: Any, description: str) -> Callable[[Any], Any]:
    """sanic-ext OpenAPI: a JSON answer whose schema is `kind`'s."""
    return openapi.response(status, {"application/json": schema_of(kind)}, description)


def query_parameters(model: type[BaseModel]) -> Callable[[Any], Any]:
    """sanic-ext OpenAPI: each field of `model` (what `edge.parsing.query` validates) as a query
    parameter, with its type, bounds, default and whether it is required."""
    schema = schema_of(model)
    required = set(schema.get("required", ()))

    def decorate(handler: Any) -> Any:
        for name, field in schema["properties"].items():
            # A `Schema` is taken as it is; a plain dict would be read as an object's properties.
            handler = openapi.parameter(name, Schema(**field), "query", required=name in required)(handler)
        return handler

    return decorate
