"""Text-to-image through the whole fleet: edge → RabbitMQ → worker → S3 → log → projections."""

from __future__ import annotations

import base64
import io

import httpx
import pytest
from PIL import Image

from tests.fleet import Fleet
from tests.integration.helpers import SMALL, finished, poll, post, read_log, terminal_events

pytestmark = pytest.mark.integration


def test_sync_request_returns_stored_images_with_base64(fleet: Fleet) -> None:
    fleet.worker()
    edge = fleet.edge()
    response = post(
        f"{edge.url}/v1/generation/text-to-image",
        {**SMALL, "prompt": "a cat", "image_seed": 42, "require_base64": True},
    )
    assert response.status_code == 200, response.text
    [item] = response.json()
    assert set(item) == {"base64", "url", "seed", "finish_reason"}
    assert (item["seed"], item["finish_reason"]) == ("42", "SUCCESS")
    assert item["url"].startswith(f"{edge.url}/files/") and item["url"].endswith("-0.png")
    stored = httpx.get(item["url"]).content
    assert item["base64"] == "data:image/png;base64," + base64.b64encode(stored).decode()
    assert Image.open(io.BytesIO(stored)).size == (64, 64)


def test_async_job_runs_four_images_with_consecutive_seeds(fleet: Fleet) -> None:
    fleet.worker()
    edge = fleet.edge()
    body = {**SMALL, "image_number": 4, "image_seed": 1000, "async_process": True}
    body["advanced_params"] = {"overwrite_step": 12}
    job = post(f"{edge.url}/v1/generation/text-to-image", body).json()
    assert (job["job_type"], job["job_stage"], job["job_result"]) == ("Text to Image", "WAITING", None)
    running = poll(edge.url, job["job_id"], lambda j: j["job_stage"] == "RUNNING" and j["job_step_preview"])
    assert 0 <= running["job_progress"] < 100 and running["job_status"]
    Image.open(io.BytesIO(base64.b64decode(running["job_step_preview"]))).verify()
    done = poll(edge.url, job["job_id"], finished)
    assert done["job_stage"] == "SUCCESS" and done["job_progress"] == 100
    assert [r["seed"] for r in done["job_result"]] == ["1000", "1001", "1002", "1003"]
    assert len({httpx.get(r["url"]).content for r in done["job_result"]}) == 4


def test_random_seed_and_overwritten_size(fleet: Fleet) -> None:
    fleet.worker()
    edge = fleet.edge()
    body = {**SMALL, "image_seed": -1, "advanced_params": {"overwrite_width": 128}}
    [item] = post(f"{edge.url}/v1/generation/text-to-image", body).json()
    assert 0 <= int(item["seed"]) <= 2**63 - 1
    assert Image.open(io.BytesIO(httpx.get(item["url"]).content)).size == (128, 64)


def test_queue_and_history_with_paging(fleet: Fleet) -> None:
    fleet.worker()
    edge = fleet.edge()
    ids = [
        post(f"{edge.url}/v1/generation/text-to-image", {**SMALL, "async_process": True}).json()["job_id"]
        for _ in range(3)
    ]
    for job_id in ids:
        poll(edge.url, job_id, finished)
    queue = httpx.get(f"{edge.url}/v1/generation/job-queue").json()
    assert queue == {"running_size": 0, "finished_size": 3, "last_job_id": ids[-1]}
    first = httpx.get(f"{edge.url}/v1/generation/job-history", params={"page": 0, "page_size": 2}).json()
    second = httpx.get(f"{edge.url}/v1/generation/job-history", params={"page": 1, "page_size": 2}).json()
    assert [h["job_id"] for h in first["history"]] == [ids[2], ids[1]]
    assert [h["job_id"] for h in second["history"]] == [ids[0]]
    assert all(h["is_finished"] and h["finish_mills"] >= h["start_mills"] > 0 for h in first["history"])
    one = httpx.get(f"{edge.url}/v1/generation/job-history", params={"job_id": ids[1]}).json()
    assert [h["job_id"] for h in one["history"]] == [ids[1]]


def test_unknown_job_is_404_in_fooocus_shape(fleet: Fleet) -> None:
    edge = fleet.edge()
    response = httpx.get(f"{edge.url}/v1/generation/query-job", params={"job_id": "nope"})
    assert response.status_code == 404
    assert response.json()["job_type"] == "Not Found" and response.json()["job_status"] == "Job not found"


def test_stop_interrupts_the_running_job(fleet: Fleet) -> None:
    fleet.worker()
    edge = fleet.edge()
    body = {**SMALL, "aspect_ratios_selection": "256*256", "async_process": True}
    body["advanced_params"] = {"overwrite_step": 200}
    job = post(f"{edge.url}/v1/generation/text-to-image", body).json()
    poll(edge.url, job["job_id"], lambda j: j["job_stage"] == "RUNNING" and j["job_progress"] > 15)
    assert httpx.post(f"{edge.url}/v1/generation/stop").json() == {"msg": "success"}
    done = poll(edge.url, job["job_id"], finished, timeout=20)
    # Fooocus-API 0.5: a stopped job is a SUCCESS with the images finished so far (none here).
    assert done["job_stage"] == "SUCCESS" and done["job_progress"] < 90 and done["job_result"] == []
    log = read_log(fleet.fleet_env.amqp_url, fleet.fleet_env.namespace)
    assert [e.type for e in terminal_events(log, job["job_id"])] == ["job.cancelled"]


def test_queue_full_answers_like_fooocus_api(fleet: Fleet) -> None:
    edge = fleet.edge("edge", "--queue-size", "1")  # no worker: the first job stays queued
    accepted = post(f"{edge.url}/v1/generation/text-to-image", {**SMALL, "async_process": True}).json()
    assert accepted["job_stage"] == "WAITING"
    full_async = post(f"{edge.url}/v1/generation/text-to-image", {**SMALL, "async_process": True}).json()
    assert full_async["job_id"] == "" and full_async["job_stage"] == "ERROR"
    assert full_async["job_result"][0]["finish_reason"] == "QUEUE_IS_FULL"
    full_sync = post(f"{edge.url}/v1/generation/text-to-image", SMALL).json()
    assert full_sync == [{"base64": None, "url": None, "seed": "", "finish_reason": "QUEUE_IS_FULL"}]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (b'{"prompt": "a cat",', ["body"]),
        (b'{"image_number": 33}', ["body", "image_number"]),
        (b'{"guidance_scale": 0.5}', ["body", "guidance_scale"]),
        (b'{"aspect_ratios_selection": "1024+1024"}', ["body", "aspect_ratios_selection"]),
        (b'{"advanced_params": {"overwrite_step": 500}}', ["body", "advanced_params", "overwrite_step"]),
        (b'{"performance_selection": "Fast"}', ["body", "performance_selection"]),
    ],
)
def test_bad_input_is_422_naming_the_field(fleet: Fleet, body: bytes, loc: list[str]) -> None:
    edge = fleet.edge()
    response = httpx.post(f"{edge.url}/v1/generation/text-to-image", content=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == loc
    assert httpx.get(f"{edge.url}/v1/generation/job-queue").json()["running_size"] == 0


def test_bad_query_parameters_are_422_naming_the_field(fleet: Fleet) -> None:
    edge = fleet.edge()
    for path, loc in (
        ("/v1/generation/query-job", ["query", "job_id"]),
        ("/v1/generation/query-job?job_id=x&require_step_preview=maybe", ["query", "require_step_preview"]),
        ("/v1/generation/job-history?page=-1", ["query", "page"]),
        ("/v1/generation/job-history?page_size=many", ["query", "page_size"]),
    ):
        response = httpx.get(f"{edge.url}{path}")
        assert (response.status_code, response.json()["detail"][0]["loc"]) == (422, loc), path
