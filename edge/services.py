"""The long-lived objects of one edge process, created at server start and shared by handlers."""

from __future__ import annotations

from dataclasses import dataclass

from sanic import Request

from edge.bus import EdgeBus
from edge.inputs import ImageFetcher
from edge.readmodel import ReadModel
from edge.results import ResultRenderer
from edge.settings import EdgeSettings
from edge.webhooks import WebhookSender
from edge.workers import WorkerRoster
from storage import ObjectStore


@dataclass(frozen=True)
class Services:
    settings: EdgeSettings
    store: ObjectStore
    model: ReadModel
    bus: EdgeBus
    renderer: ResultRenderer
    webhooks: WebhookSender
    workers: WorkerRoster
    fetcher: ImageFetcher


def services(request: Request) -> Services:
    return request.app.ctx.services  # type: ignore[no-any-return]
