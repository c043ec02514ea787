"""The edge's errors and their Fooocus-API shaped JSON answers."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from sanic import Request, Sanic
from sanic.exceptions import SanicException
from sanic.helpers import STATUS_CODES
from sanic.response import JSONResponse
from sanic.response import json as json_response

ECHO_CHARS = 200


class EdgeError(SanicException):
    """Base of the edge's own errors; rendered as `{"detail": ...}`."""

    status_code = 500
    quiet = True

    def __init__(self, detail: Any = None) -> None:
        super().__init__(str(detail or self.message))
        self.detail = detail or self.message


class InvalidRequest(EdgeError):
    """422 with pydantic-style `detail` items, each naming the field by its `loc`."""

    status_code = 422
    message = "Unprocessable Entity"

    @classmethod
    def from_validation(cls, error: ValidationError, where: str) -> InvalidRequest:
        detail = [
            {"type": e["type"], "loc": [where, *e["loc"]], "msg": e["msg"], "input": echo(e.get("input"))}
            for e in error.errors(include_url=False, include_context=False)
        ]
        return cls(detail)


def echo(value: Any) -> Any:
    """The refused input as the answer repeats it: short values whole, long ones cut, so a 50 MB field
    is not sent back; text is made encodable (a lone surrogate cannot be written as UTF-8 JSON)."""
    if isinstance(value, str):
        cut = value if len(value) <= ECHO_CHARS else f"{value[:ECHO_CHARS]}…"
        return cut.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, bool | int | float) or value is None:
        return value
    # A list or object is echoed whole only when small, and then as the client sent it.
    text = json.dumps(value, default=str, ensure_ascii=False)
    return json.loads(text.encode("utf-8", "replace")) if len(text) <= ECHO_CHARS else None


class Forbidden(EdgeError):
    status_code = 403
    message = "Forbidden"


class NotFound(EdgeError):
    status_code = 404
    message = "Not Found"


class CancelNotRecorded(EdgeError):
    status_code = 503
    message = "The cancel was not recorded. Retry shortly."


class BrokerUnavailable(EdgeError):
    status_code = 503
    message = "The job queue is unavailable; nothing was accepted. Retry shortly."


def install(app: Sanic) -> None:
    """Render every edge error, and any unexpected one, as JSON."""

    @app.exception(EdgeError)
    async def edge_error(request: Request, error: EdgeError) -> JSONResponse:
        headers = getattr(error, "headers", None)
        return json_response({"detail": error.detail}, status=error.status_code, headers=headers, default=str)

    @app.exception(SanicException)
    async def sanic_error(request: Request, error: SanicException) -> JSONResponse:
        # Sanic's own refusals (unknown route, wrong method, body too large…) in the same shape.
        detail = str(error) or STATUS_CODES.get(error.status_code, b"Error").decode()
        headers = getattr(error, "headers", None)
        return json_response({"detail": detail}, status=error.status_code, headers=headers)
