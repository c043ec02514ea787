"""While an edge folds log it has not read yet (a new read model, or a long time down), it serves, but
only what it can answer truly: `/ping`, files, docs, the models and tools, and `query-job` for a job
already folded. Every other job route answers 503 naming the catch-up, with `Retry-After`, rather than
a wrong 404, a wrong count or a submit checked against a queue it cannot see yet."""

from __future__ import annotations

from sanic import Request, Sanic

from edge.errors import EdgeError

GATED_PREFIXES = ("v1/generation/", "v2/generation/")
UNGATED_ROUTES = frozenset({"v1/generation/stop", "v1/generation/query-job"})
RETRY_AFTER_S = 2


class CatchingUp(EdgeError):
    status_code = 503
    message = "This edge is catching up with the event log; retry shortly."
    headers = {"Retry-After": str(RETRY_AFTER_S)}  # noqa: RUF012 - Sanic reads it from the class


def catching_up(request: Request) -> bool:
    services = getattr(request.app.ctx, "services", None)
    return services is not None and not services.model.current.is_set()


def install(app: Sanic) -> None:
    @app.on_request
    async def gate(request: Request) -> None:
        route = request.route
        if route is None or not route.path.startswith(GATED_PREFIXES) or route.path in UNGATED_ROUTES:
            return
        if catching_up(request):
            raise CatchingUp()
