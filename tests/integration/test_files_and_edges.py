"""Result files served from object storage, and edges side by side agreeing on every job."""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.fleet import Fleet
from tests.integration.helpers import SMALL, finished, poll, post
from worker.outputs import read_metadata

pytestmark = pytest.mark.integration


def test_files_are_served_and_nothing_outside_the_prefix(fleet: Fleet) -> None:
    fleet.worker()
    edge = fleet.edge()
    [item] = post(f"{edge.url}/v1/generation/text-to-image", SMALL).json()
    day, name = item["url"].split("/files/")[1].split("/")
    served = httpx.get(item["url"])
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    assert served.content.startswith(b"\x89PNG")
    # Converted to what the client accepts, as Fooocus-API does; the stored type when it is acceptable.
    for accept, media, magic in (
        ("image/jpeg", "image/jpeg", b"\xff\xd8\xff"),
        ("image/webp;q=0.9, image/png;q=0.8", "image/webp", b"RIFF"),
        ("image/png, image/jpeg", "image/png", b"\x89PNG"),
        ("*/*", "image/png", b"\x89PNG"),
    ):
        negotiated = httpx.get(item["url"], headers={"Accept": accept})
        assert negotiated.status_code == 200, accept
        assert negotiated.headers["content-type"] == media and negotiated.content.startswith(magic), accept
    missing = httpx.get(f"{edge.url}/files/{day}/no-such-image.png")
    assert missing.status_code == 404 and missing.json() == {"detail": "Not Found"}
    job_id = name.rsplit("-", 1)[0]
    for attempt in (
        f"/files/{day}/..%2F..%2Fmanifests%2F{job_id}.json",
        f"/files/..%2Fmanifests/{job_id}.json",
        f"/files/{day}/%2e%2e%2fsecret.png",
        f"/files/{day}/{name}%00.png",
        "/files/2026-13-45/x.png",
    ):
        assert httpx.get(f"{edge.url}{attempt}").status_code == 404, attempt


def test_two_edges_give_the_same_answers_and_a_new_one_starts_from_a_snapshot(fleet: Fleet) -> None:
    fleet.worker()
    left = fleet.edge("edge-left", "--base-url", "http://fleet.test", FLEET_READ_MODEL_SNAPSHOT_S="0.5")
    right = fleet.edge("edge-right", "--base-url", "http://fleet.test")
    job = post(f"{left.url}/v1/generation/text-to-image", {**SMALL, "async_process": True}).json()
    done_left = poll(left.url, job["job_id"], finished)
    done_right = poll(right.url, job["job_id"], finished)
    assert done_left["job_stage"] == "SUCCESS"
    assert {**done_left, "job_step_preview": None} == {**done_right, "job_step_preview": None}
    queues = [httpx.get(f"{e.url}/v1/generation/job-queue").json() for e in (left, right)]
    assert queues[0] == queues[1] == {"running_size": 0, "finished_size": 1, "last_job_id": job["job_id"]}

    # A new edge (a new SQLite file) starts from the left edge's latest snapshot in S3.
    left.wait_log("uploaded a snapshot of the read model")
    new = fleet.edge("edge-new", "--base-url", "http://fleet.test")
    assert "seeded from the latest snapshot" in new.log()
    answer = httpx.get(f"{new.url}/v1/generation/query-job", params={"job_id": job["job_id"]}).json()
    assert {**answer, "job_step_preview": None} == {**done_left, "job_step_preview": None}


def test_api_key_guards_every_route_but_docs_and_files(fleet: Fleet) -> None:
    edge = fleet.edge("edge", "--apikey", "s3cret")
    for method, path in (
        ("GET", "/ping"),
        ("GET", "/"),
        ("GET", "/v1/generation/job-queue"),
        ("GET", "/v1/generation/query-job?job_id=x"),
        ("GET", "/v1/generation/job-history"),
        ("POST", "/v1/generation/text-to-image"),
        ("POST", "/v1/generation/stop"),
        ("POST", "/v1/generation/job/x/cancel"),
        ("GET", "/v1/generation/job/x/webhooks"),
        ("POST", "/v1/generation/image-upscale-vary"),
        ("POST", "/v2/generation/image-upscale-vary"),
        ("POST", "/v1/generation/image-inpaint-outpaint"),
        ("POST", "/v2/generation/image-inpait-outpaint"),
        ("POST", "/v1/generation/image-prompt"),
        ("POST", "/v2/generation/image-prompt"),
        ("POST", "/v1/generation/image-enhance"),
        ("POST", "/v2/generation/image-enhance"),
        ("POST", "/v2/generation/text-to-image-with-ip"),
        ("POST", "/v1/tools/describe-image"),
        ("POST", "/v1/tools/generate_mask"),
        ("GET", "/v1/engines/all-models"),
        ("POST", "/v1/engines/refresh-models"),
        ("GET", "/v1/engines/styles"),
        ("GET", "/v1/engines/clean_vram"),
    ):
        for headers in ({}, {"X-API-KEY": "wrong"}):
            refused = httpx.request(method, f"{edge.url}{path}", headers=headers)
            assert (refused.status_code, refused.json()) == (403, {"detail": "Forbidden"}), path
    assert httpx.get(f"{edge.url}/ping", headers={"X-API-KEY": "s3cret"}).json() == "pong"
    styles = httpx.get(f"{edge.url}/v1/engines/styles", headers={"X-API-KEY": "s3cret"}).json()
    assert styles[:2] == ["Fooocus V2", "Random Style"] and len(styles) == 279
    assert httpx.get(f"{edge.url}/docs/openapi.json").status_code == 200
    assert httpx.get(f"{edge.url}/files/2026-01-01/none.png").status_code == 404


def test_save_name_extension_and_metadata_end_to_end(fleet: Fleet) -> None:
    fleet.worker(FLEET_PRESET="anime")
    edge = fleet.edge()
    body = {
        **SMALL,
        "prompt": "a cat",
        "image_number": 2,
        "image_seed": 77,
        "save_name": "my-cat",
        "save_extension": "webp",
        "meta_scheme": "a1111",
        "require_base64": True,
    }
    items = post(f"{edge.url}/v1/generation/text-to-image", body).json()
    assert [item["url"].rsplit("/", 1)[1] for item in items] == ["my-cat-0.webp", "my-cat-1.webp"]
    assert all(item["base64"].startswith("data:image/webp;base64,") for item in items)
    served = httpx.get(items[1]["url"])
    assert served.status_code == 200 and served.headers["content-type"] == "image/webp"
    text, scheme = read_metadata(served.content)
    assert scheme == "a1111" and text is not None and text.startswith("a cat\n")
    # Seed 78 for the second image; the anime preset's cfg (6.0) is overridden to 1.0 by Lightning.
    assert "Seed: 78" in text and "CFG scale: 1.0" in text and "Performance: Lightning" in text
    assert base64.b64decode(items[1]["base64"].split(",", 1)[1]) == served.content
