"""`Idempotency-Key` through the real routes: one job per key and request, 409 on reuse, the key
scoped to the API key, and a request's digest independent of JSON spacing and multipart boundaries."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
from types import SimpleNamespace
from typing import Any

import httpx
from PIL import Image
from sanic import Sanic

from edge import errors
from edge.api import routes
from edge.results import ResultRenderer
from edge.settings import EdgeSettings
from tests.edge.support import sqlite_model
from tests.edge.test_streaming import FakeBus, FakeStore

SMALL = {"aspect_ratios_selection": "64*64", "image_seed": 3}
T2I = "/v1/generation/text-to-image"
NAMES = itertools.count()


class MemoryStore(FakeStore):
    async def put(self, key: str, data: bytes, content_type: str = "") -> str:
        self.objects[key] = data
        return "etag"


def make_app() -> Sanic:
    """The edge's routes over model and a bus that ends every job a moment later."""
    app = Sanic(f"idempotency-{next(NAMES)}")
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.blueprint(routes)
    errors.install(app)
    model, store = sqlite_model(), MemoryStore()
    app.ctx.services = SimpleNamespace(
        settings=EdgeSettings(_env_file=None, sync_timeout_s=5),  # type: ignore[call-arg]
        model=model,
        bus=FakeBus(model, store, "success"),
        store=store,
        renderer=ResultRenderer(store, "http://edge"),  # type: ignore[arg-type]
        fetcher=None,
    )
    return app


def run(scenario: Any) -> tuple[Any, Sanic]:
    app = make_app()

    async def go() -> Any:
        return await scenario(app.asgi_client)

    return asyncio.run(go()), app


def jobs(app: Sanic) -> list[Any]:
    return app.ctx.services.bus.jobs  # type: ignore[no-any-return]


def test_a_repeat_answers_for_the_same_job_and_queues_nothing_new() -> None:
    async def scenario(client: Any) -> list[Any]:
        body = {**SMALL, "async_process": True}
        key = {"Idempotency-Key": "order-1"}
        first = await client.post(T2I, content=json.dumps(body), headers=key)
        spaced = await client.post(T2I, content=json.dumps(body, indent=4), headers=key)
        other = await client.post(T2I, content=json.dumps(body), headers={"Idempotency-Key": "order-2"})
        plain = await client.post(T2I, content=json.dumps(body))
        return [first, spaced, other, plain]

    (first, spaced, other, plain), app = run(scenario)
    assert first[1].json["job_id"] == spaced[1].json["job_id"] == spaced[1].headers["x-fleet-job-id"]
    assert len({r[1].json["job_id"] for r in (first, other, plain)}) == 3
    assert len(jobs(app)) == 3
    queued = jobs(app)[0]
    assert queued.idempotency_key is not None and queued.request_digest is not None
    assert "order-1" not in queued.model_dump_json()  # only digests reach the log
    assert jobs(app)[2].idempotency_key is None


def test_a_sync_repeat_waits_for_and_answers_with_the_first_jobs_results() -> None:
    async def scenario(client: Any) -> list[Any]:
        key = {"Idempotency-Key": "sync-1"}
        return [await client.post(T2I, json=SMALL, headers=key) for _ in range(2)]

    (first, second), app = run(scenario)
    assert first[1].json == second[1].json and first[1].json[0]["finish_reason"] == "SUCCESS"
    assert first[1].headers["x-fleet-job-id"] == second[1].headers["x-fleet-job-id"]
    assert len(jobs(app)) == 1


def test_the_same_key_with_another_request_is_409() -> None:
    async def scenario(client: Any) -> list[Any]:
        key = {"Idempotency-Key": "order-1"}
        first = await client.post(T2I, json={**SMALL, "async_process": True}, headers=key)
        changed = await client.post(T2I, json={**SMALL, "async_process": True, "prompt": "x"}, headers=key)
        streamed = await client.post(
            T2I, json={**SMALL, "async_process": True}, headers={**key, "Accept": "image/png"}
        )
        return [first, changed, streamed]

    (first, changed, streamed), app = run(scenario)
    for answer in (changed, streamed):
        assert answer[1].status == 409
        assert first[1].json["job_id"] in answer[1].json["detail"]
    assert len(jobs(app)) == 1


def test_keys_are_scoped_to_the_api_key() -> None:
    async def scenario(client: Any) -> list[str]:
        body = {**SMALL, "async_process": True}
        answers = [
            await client.post(T2I, json=body, headers={"Idempotency-Key": "k", "X-API-KEY": tenant})
            for tenant in ("a", "b", "a")
        ]
        return [r[1].json["job_id"] for r in answers]

    (a, b, a_again), app = run(scenario)
    assert a == a_again != b and len(jobs(app)) == 2


def test_concurrent_repeats_on_one_edge_make_one_job() -> None:
    async def scenario(client: Any) -> set[str]:
        body = {**SMALL, "async_process": True}
        answers = await asyncio.gather(
            *(client.post(T2I, json=body, headers={"Idempotency-Key": "burst"}) for _ in range(5))
        )
        return {r[1].json["job_id"] for r in answers}

    ids, app = run(scenario)
    assert len(ids) == 1 and len(jobs(app)) == 1


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(out, format="PNG")
    return out.getvalue()


def test_multipart_repeats_match_whatever_the_boundary_and_a_new_file_does_not() -> None:
    def multipart(image: bytes, boundary: str) -> tuple[bytes, dict[str, str]]:
        request = httpx.Request(
            "POST",
            "http://edge/",
            data={"uov_method": "Vary (Subtle)", "async_process": "true", "aspect_ratios_selection": "64*64"},
            files={"input_image": ("a.png", image, "image/png")},
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        return request.read(), {"Content-Type": request.headers["Content-Type"], "Idempotency-Key": "up-1"}

    async def scenario(client: Any) -> list[Any]:
        route = "/v1/generation/image-upscale-vary"
        answers = []
        for image, boundary in ((png(), "aaaa1111"), (png(), "bbbb2222"), (png() + b"\0", "cccc3333")):
            content, headers = multipart(image, boundary)
            answers.append(await client.post(route, content=content, headers=headers))
        return answers

    (first, again, changed), app = run(scenario)
    assert first[1].status == 200, first[1].json
    assert first[1].json["job_id"] == again[1].json["job_id"]
    assert changed[1].status == 409 and len(jobs(app)) == 1


def test_a_bad_key_is_a_422_naming_the_header() -> None:
    async def scenario(client: Any) -> Any:
        return await client.post(T2I, json=SMALL, headers={"Idempotency-Key": "x" * 256})

    answer, app = run(scenario)
    assert answer[1].status == 422 and answer[1].json["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert jobs(app) == []


def test_openapi_documents_the_header_the_cancel_and_the_delivery_log() -> None:
    async def scenario(client: Any) -> Any:
        return await client.get("/docs/openapi.json")

    answer, _ = run(scenario)
    paths = answer[1].json["paths"]
    for path in (T2I, "/v2/generation/image-prompt", "/v1/generation/image-enhance"):
        assert [p["name"] for p in paths[path]["post"]["parameters"]] == ["Idempotency-Key"], path
        assert "409" in paths[path]["post"]["responses"]
    cancel = paths["/v1/generation/job/{job_id}/cancel"]["post"]
    assert set(cancel["responses"]) == {"202", "404", "409", "503"}
    assert "200" in paths["/v1/generation/job/{job_id}/webhooks"]["get"]["responses"]
