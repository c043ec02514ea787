"""The edge: a Sanic app answering Fooocus-API's routes from projections of the event log."""

from __future__ import annotations

import logging
from datetime import timedelta

from sanic import Request, Sanic
from sanic.exceptions import NotFound, PayloadTooLarge

from contracts.topology import Topology
from edge import auth, errors
from edge.api import routes
from edge.bus import EdgeBus
from edge.inputs import ImageFetcher
from edge.projections.store import ProjectionStore
from edge.projections.workers import WorkerRoster
from edge.results import ResultRenderer
from edge.services import Services
from edge.settings import EdgeSettings
from edge.webhooks import WebhookSender
from storage import ObjectStore, StorageSettings

log = logging.getLogger(__name__)


def build_app(settings: EdgeSettings, name: str = "fooocus-fleet") -> Sanic:
    """The routes, limits, error answers and API key, without the connections (tests add fakes)."""
    app = Sanic(name)
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config.OAS_UI_DEFAULT = "swagger"
    app.config.REQUEST_MAX_SIZE = settings.max_request_bytes
    app.blueprint(routes)
    errors.install(app)
    _cap_body(app, settings.max_request_bytes)
    auth.install(app, settings)
    _no_oauth2_page(app)
    return app


def _no_oauth2_page(app: Sanic) -> None:
    """sanic-ext's Swagger UI adds /docs/oauth2-redirect.html, whose handler downloads the page from a CDN
    with a blocking `urlopen` on the event loop: any caller could stall the edge (offline, for as long as
    DNS takes) and make it reach out. The API uses no OAuth2, so the route answers 404 instead."""

    @app.on_request
    async def oauth2_redirect(request: Request) -> None:
        route = request.route
        if route is not None and route.name.endswith(".openapi.oauth2-redirect"):
            raise NotFound("Not Found")


def _cap_body(app: Sanic, limit: int) -> None:
    """Sanic's own server answers 413 before reading past `REQUEST_MAX_SIZE`; this repeats the check for
    servers that hand over a body already read (ASGI), so the limit holds however the edge is served."""

    @app.on_request
    async def body_limit(request: Request) -> None:
        if len(request.body or b"") > limit:
            raise PayloadTooLarge(f"the request body is larger than {limit} bytes")


def create_app(settings: EdgeSettings, storage: StorageSettings, name: str = "fooocus-fleet") -> Sanic:
    """Build the edge; it connects to RabbitMQ and S3 only when the server starts."""
    app = build_app(settings, name)

    @app.before_server_start
    async def start(app: Sanic) -> None:
        store = ObjectStore(storage)
        await store.ensure_bucket()
        projections = ProjectionStore(history_limit=settings.queue_history)
        workers = WorkerRoster(timedelta(seconds=settings.worker_stale_s))
        topology = Topology(settings.namespace)
        bus = EdgeBus(
            settings.amqp_url,
            topology,
            settings.edge_id,
            projections,
            workers,
            settings.webhook_concurrency,
            reconnect_interval_s=settings.reconnect_interval_s,
            publish_timeout_s=settings.publish_timeout_s,
        )
        renderer = ResultRenderer(store, settings.public_url)
        webhooks = WebhookSender(projections, renderer, settings, bus)
        bus.on_webhook(webhooks)
        await bus.start(settings.catch_up_timeout_s)
        fetcher = ImageFetcher(settings)
        app.ctx.services = Services(settings, store, projections, bus, renderer, webhooks, workers, fetcher)
        log.info("edge %s caught up with the log; serving on %s", settings.edge_id, settings.public_url)

    @app.after_server_stop
    async def stop(app: Sanic) -> None:
        fleet: Services = app.ctx.services
        await fleet.bus.close()
        await fleet.webhooks.close()
        await fleet.fetcher.close()

    return app
