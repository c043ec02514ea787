"""The edge: a Sanic app answering Fooocus-API's routes from projections of the event log."""

from __future__ import annotations

import logging
from datetime import timedelta

from sanic import Sanic

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


def create_app(settings: EdgeSettings, storage: StorageSettings, name: str = "fooocus-fleet") -> Sanic:
    """Build the edge; it connects to RabbitMQ and S3 only when the server starts."""
    app = Sanic(name)
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config.OAS_UI_DEFAULT = "swagger"
    app.blueprint(routes)
    errors.install(app)
    auth.install(app, settings)

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
            reconnect_interval_s=settings.reconnect_interval_s,
            publish_timeout_s=settings.publish_timeout_s,
        )
        renderer = ResultRenderer(store, settings.public_url)
        webhooks = WebhookSender(projections, renderer, settings.webhook_url, settings.webhook_timeout_s)
        bus.on_terminal(webhooks)
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
