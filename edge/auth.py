"""`X-API-KEY`, when a key is configured: every route but the docs (and /files unless protected)."""

from __future__ import annotations

import hmac

from sanic import Request, Sanic

from edge.errors import Forbidden
from edge.settings import EdgeSettings

OPEN_PREFIXES = ("/docs", "/openapi.json")


def install(app: Sanic, settings: EdgeSettings) -> None:
    if not settings.apikey:
        return
    expected = settings.apikey.encode()
    open_prefixes = OPEN_PREFIXES if settings.protect_files else (*OPEN_PREFIXES, "/files/")

    @app.on_request
    async def require_key(request: Request) -> None:
        if request.path.startswith(open_prefixes):
            return
        given = request.headers.get("X-API-KEY", "").encode()
        if not hmac.compare_digest(given, expected):
            raise Forbidden()
