"""The edge: a Sanic app answering Fooocus-API's routes from the read model of the event log."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from datetime import timedelta
from functools import partial

from sanic import Request, Sanic
from sanic.exceptions import NotFound, PayloadTooLarge

from contracts.topology import Topology
from edge import auth, catchup, errors
from edge.api import routes
from edge.bus import EdgeBus
from edge.inputs import ImageFetcher
from edge.logreader import log_end
from edge.readmodel import ReadModel, snapshots
from edge.results import ResultRenderer
from edge.services import Services
from edge.settings import EdgeSettings
from edge.webhooks import WebhookSender
from edge.workers import WorkerRoster
from storage import ObjectStore, StorageSettings

log = logging.getLogger(__name__)
SLOW_CATCH_UP_S = 60.0
RESPONSE_MARGIN_S = 30.0  # past the sync timeout: time to render the 504 or the result


def build_app(settings: EdgeSettings, name: str = "fooocus-fleet") -> Sanic:
    """The routes, limits, error answers and API key, without the connections (tests add fakes)."""
    app = Sanic(name)
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config.OAS_UI_DEFAULT = "swagger"
    app.config.REQUEST_MAX_SIZE = settings.max_request_bytes
    # Sanic cuts any handler at RESPONSE_TIMEOUT (60 s by default) with a 503: a sync generation call
    # waits for its job as long as the edge's own sync timeout says, and answers 504 itself after that.
    app.config.RESPONSE_TIMEOUT = settings.sync_timeout_s + RESPONSE_MARGIN_S
    app.blueprint(routes)
    errors.install(app)
    _cap_body(app, settings.max_request_bytes)
    auth.install(app, settings)
    catchup.install(app)
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
        topology = Topology(settings.namespace)
        end = partial(log_end, settings.amqp_url, topology)
        if await snapshots.seed(store, settings.read_model, topology.log.name, end):
            log.info("edge %s: a new read model, seeded from the latest snapshot", settings.edge_id)
        model = await ReadModel.open(
            settings.read_model,
            topology.log.name,
            settings.edge_id,
            history_limit=settings.queue_history,
            history_days=settings.history_days,
        )
        workers = WorkerRoster(timedelta(seconds=settings.worker_stale_s))
        bus = EdgeBus(
            settings.amqp_url,
            topology,
            settings.edge_id,
            model,
            workers,
            settings.webhook_concurrency,
            reconnect_interval_s=settings.reconnect_interval_s,
            publish_timeout_s=settings.publish_timeout_s,
        )
        renderer = ResultRenderer(store, settings.public_url)
        webhooks = WebhookSender(model, renderer, settings, bus)
        bus.on_webhook(webhooks)
        fetcher = ImageFetcher(settings)
        app.ctx.services = Services(settings, store, model, bus, renderer, webhooks, workers, fetcher)
        # Everything built so far lives as long as the edge: out of the collector's way, a full
        # collection no longer walks it each time a long catch-up's batches fill the young generations.
        gc.freeze()
        await bus.start()
        log.info(
            "edge %s serving on %s; folding the log from offset %s",
            settings.edge_id,
            settings.public_url,
            bus.log_offset,
        )
        app.add_task(_announce_current(model, bus, settings.edge_id), name="announce-current")
        if settings.read_model_snapshot_s and snapshots.sqlite_file(settings.read_model) is not None:
            every_s = settings.read_model_snapshot_s
            taking = snapshots.keep_taking(
                store, settings.read_model, topology.log.name, lambda: bus.folder.position, every_s
            )
            app.add_task(taking, name="read-model-snapshots")

    @app.after_server_stop
    async def stop(app: Sanic) -> None:
        fleet: Services = app.ctx.services
        await fleet.bus.close()
        await fleet.webhooks.close()
        await fleet.fetcher.close()
        await fleet.model.close()

    return app


async def _announce_current(model: ReadModel, bus: EdgeBus, edge_id: str) -> None:
    """Log when the read model is current; while it is not, say every minute where the fold stands."""
    began = time.monotonic()
    while True:
        try:
            await asyncio.wait_for(model.current.wait(), SLOW_CATCH_UP_S)
        except TimeoutError:
            # A log deleted and declared again (a new broker) restarts at offset 0, below a stored
            # position: such a read model never catches up, and the operator must replace it.
            log.warning(
                "edge %s still catching up after %.0f s, folded up to offset %s; if the broker's log was"
                " recreated, this read model is past its end: remove it (FLEET_READ_MODEL_URL)",
                edge_id,
                time.monotonic() - began,
                bus.folder.position,
            )
            continue
        log.info("edge %s caught up with the log in %.1f s", edge_id, time.monotonic() - began)
        return
