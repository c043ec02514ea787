"""Rendering a job view in Fooocus-API's shapes: URLs, optional base64, the job object."""

from __future__ import annotations

import base64
import mimetypes
from collections.abc import Iterable

from contracts import OutputImage
from edge.readmodel import JobView, Stage
from edge.schemas.responses import AsyncJobResponse, FinishReason, GeneratedImageResult
from storage import ObjectStore

NOT_FOUND = AsyncJobResponse(
    job_id="", job_type="Not Found", job_stage="ERROR", job_status="Job not found", job_progress=0
)


def queue_full(job_type: str) -> tuple[list[GeneratedImageResult], AsyncJobResponse]:
    """Fooocus-API's QUEUE_IS_FULL answers: the sync list and the async job object."""
    items = [GeneratedImageResult(finish_reason=FinishReason.QUEUE_IS_FULL)]
    return items, AsyncJobResponse(job_id="", job_type=job_type, job_stage="ERROR", job_result=items)


class ResultRenderer:
    """Turns stored outputs into result items; URLs point at this edge's `/files` route."""

    def __init__(self, store: ObjectStore, public_url: str) -> None:
        self.store = store
        self.public_url = public_url.rstrip("/")

    def url(self, key: str) -> str:
        # outputs/{date}/{name} is served as /files/{date}/{name}
        return f"{self.public_url}/files/{key.removeprefix('outputs/')}"

    async def data_uri(self, key: str) -> str:
        mime = mimetypes.guess_type(key)[0] or "image/png"
        return f"data:{mime};base64,{base64.b64encode(await self.store.get(key)).decode()}"

    async def _images(self, images: Iterable[OutputImage], with_base64: bool) -> list[GeneratedImageResult]:
        return [
            GeneratedImageResult(
                base64=await self.data_uri(image.key) if with_base64 else None,
                url=self.url(image.key),
                seed=str(image.seed),
            )
            for image in images
        ]

    async def items(self, view: JobView) -> list[GeneratedImageResult]:
        """The result list of a finished job: a stopped job's images so far, possibly none (as Fooocus-API
        0.5); a failure says so in one ERROR item rather than 0.5's bare `[]`."""
        if view.images or view.outcome == "job.cancelled":
            return await self._images(view.images, view.require_base64)
        seed = str(view.seeds[0]) if view.seeds else ""
        return [GeneratedImageResult(seed=seed, finish_reason=FinishReason.ERROR)]

    async def job(self, view: JobView, require_step_preview: bool = False) -> AsyncJobResponse:
        return AsyncJobResponse(
            job_id=view.job_id,
            job_type=view.job_type.value if view.job_type else "Text to Image",
            job_stage=view.stage.value,
            job_progress=view.progress,
            job_status=view.status,
            job_step_preview=view.preview if require_step_preview else None,
            job_result=await self.items(view) if view.finished else None,
        )


def is_success(view: JobView) -> bool:
    return view.stage is Stage.SUCCESS
