"""`X-API-KEY`, when a key is configured: every route but the docs (/docs, /openapi.json, /redoc),
/ready (and /files unless protected).

Which routes are open is decided on the route the router matched, never on the raw request path, so
`/docs/../v1/...`, `/files/%2e%2e/...` and other spellings cannot borrow an open route's exemption.
"""

from __future__ import annotations

import hmac

from sanic import Request, Sanic

from edge.errors import Forbidden
from edge.settings import EdgeSettings

OPEN_ROOTS = frozenset({"docs", "openapi.json", "redoc", "ready"})


def open_roots(settings: EdgeSettings) -> frozenset[str]:
    """First segments of the route patterns that need no key."""
    return OPEN_ROOTS if settings.protect_files else OPEN_ROOTS | {"files"}


def install(app: Sanic, settings: EdgeSettings) -> None:
    if not settings.apikey:
        return
    expected = settings.apikey.encode()
    roots = open_roots(settings)

    @app.on_request
    async def require_key(request: Request) -> None:
        route = request.route
        if route is not None and route.path.split("/", 1)[0] in roots:
            return
        given = request.headers.get("X-API-KEY", "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, expected):
            raise Forbidden()
