"""How `submit()` answers: streaming mode (spec §6.3) status mapping, and a failed sync job saying why."""

from __future__ import annotations

import asyncio
import io
import json
from types import SimpleNamespace
from typing import Any

import pytest
from PIL import Image

from contracts import JobCancelled, JobFailed, JobQueued, JobSucceeded, JobType, OutputImage, job_seq
from edge.api.generation import ERROR_HEADER, streaming, submit
from edge.readmodel import ReadModel
from edge.results import ResultRenderer
from edge.schemas.requests import CommonRequest
from edge.settings import EdgeSettings
from tests.edge.support import sqlite_model

SMALL = {"aspect_ratios_selection": "64*64", "image_seed": 3}


class FakeStore:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    async def get(self, key: str) -> bytes:
        return self.objects[key]


class FakeBus:
    """Publishes nothing; ends each job with `outcome` a moment later, as a worker would."""

    def __init__(self, model: ReadModel, store: FakeStore, outcome: str) -> None:
        self.model, self.store, self.outcome = model, store, outcome
        self.jobs: list[JobQueued] = []

    async def submit(self, job: JobQueued) -> None:
        self.jobs.append(job)
        asyncio.get_running_loop().call_later(0.01, lambda: asyncio.ensure_future(self._end(job)))

    async def _end(self, job: JobQueued) -> None:
        seq = job_seq(1, 5)
        if self.outcome == "success":
            key = f"outputs/2026-01-01/{job.job_id}-0.webp"
            out = io.BytesIO()
            Image.new("RGB", (8, 8)).save(out, format="WEBP")
            self.store.objects[key] = out.getvalue()
            event: Any = JobSucceeded(
                job_id=job.job_id, seq=seq, images=[OutputImage(key=key, seed=3)], worker_id="w", run_ms=1
            )
        elif self.outcome == "cancelled":
            event = JobCancelled(job_id=job.job_id, seq=seq, reason="stopped")
        elif self.outcome == "empty":
            event = JobSucceeded(job_id=job.job_id, seq=seq, images=[], worker_id="w", run_ms=1)
        else:
            event = JobFailed(
                job_id=job.job_id, seq=seq, code="engine_error", message="CUDA out of memory\nat step 3"
            )
        await self.model.apply(event)


def fake_request(
    outcome: str,
    headers: dict[str, str] | None = None,
    args: dict[str, str] | None = None,
    queue_size: int = 10,
) -> Any:
    model = sqlite_model()
    store = FakeStore()
    settings = EdgeSettings(_env_file=None, queue_size=queue_size, sync_timeout_s=5)  # type: ignore[call-arg]
    services = SimpleNamespace(
        settings=settings,
        model=model,
        bus=FakeBus(model, store, outcome),
        store=store,
        renderer=ResultRenderer(store, "http://edge"),  # type: ignore[arg-type]
        fetcher=None,
    )
    return SimpleNamespace(
        headers={k.lower(): v for k, v in (headers or {}).items()},
        args=args or {},
        app=SimpleNamespace(ctx=SimpleNamespace(services=services)),
    )


def answer(request: Any, **body: Any) -> Any:
    return asyncio.run(submit(request, JobType.TEXT_TO_IMAGE, CommonRequest(**SMALL, **body)))


@pytest.mark.parametrize(
    ("headers", "args", "expected"),
    [
        ({"Accept": "image/png"}, {}, True),
        ({}, {"accept": "image/png"}, True),
        ({"Accept": "image/png"}, {"accept": "application/json"}, False),  # the query wins
        ({"Accept": "*/*"}, {"accept": "image/png"}, True),
        ({"Accept": "image/png, */*"}, {}, False),  # exact match only
        ({}, {}, False),
    ],
)
def test_streaming_switch(headers: dict[str, str], args: dict[str, str], expected: bool) -> None:
    assert streaming(fake_request("success", headers, args)) is expected


def test_streaming_success_is_the_first_image_as_png_and_forces_one_image() -> None:
    request = fake_request("success", {"Accept": "image/png"})
    response = answer(request, image_number=4)
    assert (response.status, response.content_type) == (200, "image/png")
    assert Image.open(io.BytesIO(response.body)).format == "PNG"
    [job] = request.app.ctx.services.bus.jobs
    assert job.params.image_number == 1


def test_streaming_with_async_process_still_answers_the_job_object() -> None:
    request = fake_request("success", args={"accept": "image/png"})
    response = answer(request, async_process=True, image_number=3)
    body = json.loads(response.body)
    assert response.status == 200 and body["job_stage"] == "WAITING"
    assert request.app.ctx.services.bus.jobs[0].params.image_number == 1


def test_streaming_cancel_is_400_user_cancel() -> None:
    response = answer(fake_request("cancelled", {"Accept": "image/png"}))
    assert (response.status, response.body) == (400, b"USER_CANCEL")


def test_streaming_failure_is_500_saying_why() -> None:
    response = answer(fake_request("failed", {"Accept": "image/png"}))
    body = json.loads(response.body)
    assert response.status == 500 and body["finish_reason"] == "ERROR" and body["code"] == "engine_error"
    assert "CUDA out of memory" in body["detail"]
    empty = answer(fake_request("empty", {"Accept": "image/png"}))
    assert empty.status == 500 and "without images" in json.loads(empty.body)["detail"]


def test_streaming_queue_full_is_409() -> None:
    request = fake_request("success", {"Accept": "image/png"}, queue_size=1)
    asyncio.run(
        request.app.ctx.services.model.apply(
            JobQueued(
                job_id="busy",
                seq=0,
                job_type=JobType.TEXT_TO_IMAGE,
                params=CommonRequest(**SMALL).generation_params(),
            )
        )
    )
    response = answer(request)
    assert (response.status, response.body) == (409, b"QUEUE_IS_FULL")


def test_failed_sync_job_keeps_the_list_shape_and_says_why_in_a_header() -> None:
    response = answer(fake_request("failed"))
    [item] = json.loads(response.body)
    assert response.status == 200 and item == {
        "base64": None,
        "url": None,
        "seed": "3",
        "finish_reason": "ERROR",
    }
    assert response.headers[ERROR_HEADER] == "engine_error: CUDA out of memory at step 3"
    ok = answer(fake_request("success"))
    assert ERROR_HEADER not in ok.headers and json.loads(ok.body)[0]["finish_reason"] == "SUCCESS"
