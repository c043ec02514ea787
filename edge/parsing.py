"""Reading request bodies and query strings into models, with 422s that name the field."""

from __future__ import annotations

import json
import math
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sanic import Request

from edge.errors import InvalidRequest

M = TypeVar("M", bound=BaseModel)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is not a finite number")
    return value


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def load_json(raw: str | bytes, loc: list[str | int]) -> Any:
    """Strict JSON: no `NaN`/`Infinity`, no number that overflows to infinity, bounded nesting;
    anything else is a 422 at `loc`, never a 500."""
    try:
        return json.loads(raw, parse_float=_finite, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        raise InvalidRequest(
            [{"type": "json_invalid", "loc": loc, "msg": f"Invalid JSON: {reason}", "input": None}]
        ) from None


def json_body(request: Request, model: type[M]) -> M:
    """Parse the body as JSON whatever the Content-Type says (Fooocus-API clients often send none)."""
    data = load_json(request.body or b"{}", ["body"])
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
