"""An edge still folding the log serves what it can answer truly and a clear 503 for the rest."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from sanic import Sanic

from edge.app import build_app
from edge.results import ResultRenderer
from edge.settings import EdgeSettings
from tests.edge.readmodel.events import failed, queued
from tests.edge.support import sqlite_model
from tests.edge.test_idempotency import SMALL, T2I, MemoryStore
from tests.edge.test_streaming import FakeBus

QUERY = "/v1/generation/query-job"


def catching_up_edge(name: str) -> Sanic:
    settings = EdgeSettings(_env_file=None, apikey="k")  # type: ignore[call-arg]
    app = build_app(settings, name)
    model, store = sqlite_model(current=False), MemoryStore()
    asyncio.run(model.fold([queued("old"), failed("old")], position=2))
    bus = FakeBus(model, store, "success")
    app.ctx.services = SimpleNamespace(
        settings=settings,
        model=model,
        bus=bus,
        store=store,
        renderer=ResultRenderer(store, "http://edge"),  # type: ignore[arg-type]
    )
    return app


def test_while_catching_up_only_folded_jobs_are_answered_and_the_rest_is_a_503() -> None:
    app = catching_up_edge("catching-up")
    key = {"X-API-KEY": "k"}

    async def scenario(client: Any) -> list[Any]:
        return [
            await client.get("/ping", headers=key),
            await client.get("/ready"),  # open without the key: a load balancer's probe
            await client.get(QUERY, params={"job_id": "old"}, headers=key),
            await client.get(QUERY, params={"job_id": "not-folded-yet"}, headers=key),
            await client.get("/v1/generation/job-queue", headers=key),
            await client.post(T2I, json={**SMALL, "async_process": True}, headers=key),
        ]

    ping, ready, known, unknown, queue, submit = (r[1] for r in asyncio.run(scenario(app.asgi_client)))
    assert ping.status == 200 and known.status == 200 and known.json["job_stage"] == "ERROR"
    for refused in (ready, unknown, queue, submit):
        assert refused.status == 503 and "catching up with the event log" in refused.json["detail"]
        assert refused.headers["retry-after"] == "2"
    assert app.ctx.services.bus.jobs == []  # nothing was accepted

    app.ctx.services.model.current.set()

    async def later(client: Any) -> list[Any]:
        return [
            await client.get("/ready"),
            await client.get(QUERY, params={"job_id": "not-folded-yet"}, headers=key),
            await client.get("/v1/generation/job-queue", headers=key),
        ]

    ready, unknown, queue = (r[1] for r in asyncio.run(later(app.asgi_client)))
    assert ready.status == 200 and ready.json == {"ready": True, "log_position": 2}
    assert unknown.status == 404 and queue.status == 200 and queue.json["finished_size"] == 1
