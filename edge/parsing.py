"""Reading request bodies and query strings into models, with 422s that name the field."""

from __future__ import annotations

import json
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from sanic import Request

from edge.errors import InvalidRequest

M = TypeVar("M", bound=BaseModel)


def json_body(request: Request, model: type[M]) -> M:
    """Parse the body as JSON whatever the Content-Type says (Fooocus-API clients often send none)."""
    raw = request.body or b"{}"
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidRequest(
            [{"type": "json_invalid", "loc": ["body"], "msg": f"Invalid JSON: {error}", "input": None}]
        ) from None
    if not isinstance(data, dict):
        raise InvalidRequest(
            [{"type": "model_type", "loc": ["body"], "msg": "Input should be a JSON object", "input": None}]
        )
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise InvalidRequest.from_validation(error, "body") from None


def query(request: Request, model: type[M]) -> M:
    """Validate the query string (the first value of each key) against `model`."""
    values = {key: request.args.get(key) for key in request.args}
    try:
        return model.model_validate(values)
    except ValidationError as error:
        raise InvalidRequest.from_validation(error, "query") from None
