"""Telling a job's webhook that it finished, from the edge, never from a worker."""

from __future__ import annotations

import logging

import httpx

from contracts import JobCancelled, JobFailed, JobSucceeded
from edge.projections.store import ProjectionStore
from edge.results import ResultRenderer

log = logging.getLogger(__name__)

# The terminal event can reach the webhook queue a moment before this edge's projection folds it.
PROJECTION_WAIT_S = 30.0


class WebhookSender:
    """Posts Fooocus-API's payload (`job_id`, `job_result`) plus `job_stage` once per finished job."""

    def __init__(
        self,
        projections: ProjectionStore,
        renderer: ResultRenderer,
        default_url: str | None,
        timeout_s: float,
    ) -> None:
        self.projections = projections
        self.renderer = renderer
        self.default_url = default_url
        self.client = httpx.AsyncClient(timeout=timeout_s)

    async def __call__(self, event: JobSucceeded | JobFailed | JobCancelled) -> None:
        view = await self.projections.wait_finished(event.job_id, PROJECTION_WAIT_S)
        if view is None:
            log.warning("no projection for finished job %s; its webhook is skipped", event.job_id)
            return
        target = view.webhook_url or self.default_url
        if not target:
            return
        items = await self.renderer.items(view)
        payload = {
            "job_id": view.job_id,
            "job_stage": view.stage.value,
            "job_result": [{"url": item.url, "seed": item.seed} for item in items if item.url],
        }
        try:
            response = await self.client.post(
                target, json=payload, headers={"webhook-id": str(event.event_id)}
            )
            log.info("webhook for job %s answered %s", view.job_id, response.status_code)
        except httpx.HTTPError as error:
            log.warning("webhook for job %s failed: %s", view.job_id, error)

    async def close(self) -> None:
        await self.client.aclose()
