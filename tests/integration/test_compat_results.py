"""The image endpoints run to a real result on a real worker that has tiny models of every kind."""

from __future__ import annotations

import base64
import io
import json

import httpx
import pytest
from PIL import Image

from tests.fleet import Fleet
from tests.integration.compat_support import Images, b64
from tests.integration.helpers import SMALL, finished, poll

pytestmark = pytest.mark.integration
IMG = Images()


def post_json(url: str, body: dict[str, object]) -> httpx.Response:
    return httpx.post(url, content=json.dumps(body), timeout=120)


def test_every_image_job_type_ends_with_stored_images(fleet: Fleet) -> None:
    fleet.worker()
    edge = fleet.edge()
    small = {**SMALL, "image_seed": 5, "async_process": True}
    cases = [
        ("/v2/generation/image-upscale-vary", {"input_image": b64(IMG.bear), "uov_method": "Vary (Strong)"}),
        (
            "/v2/generation/image-inpaint-outpaint",
            {"input_image": b64(IMG.source), "input_mask": b64(IMG.mask)},
        ),
        (
            "/v2/generation/image-inpait-outpaint",
            {"input_image": b64(IMG.bear), "outpaint_selections": ["Left"]},
        ),
        ("/v2/generation/image-prompt", {"image_prompts": [{"cn_img": b64(IMG.bear)}]}),
        (
            "/v2/generation/text-to-image-with-ip",
            {"image_prompts": [{"cn_img": b64(IMG.bear), "cn_type": "PyraCanny"}]},
        ),
    ]
    for path, body in cases:
        job = post_json(f"{edge.url}{path}", {**small, **body}).json()
        done = poll(edge.url, job["job_id"], finished, timeout=120)
        assert done["job_stage"] == "SUCCESS", (path, done["job_status"])
        [item] = done["job_result"]
        assert set(item) == {"base64", "url", "seed", "finish_reason"} and item["seed"] == "5"
        assert httpx.get(item["url"]).status_code == 200
    upscaled = httpx.post(
        f"{edge.url}/v1/generation/image-upscale-vary",
        files={"input_image": ("bear.jpg", IMG.bear)},
        data={"uov_method": "Upscale (Fast 2x)"},
        timeout=120,
    )
    assert upscaled.status_code == 200, upscaled.text
    [item] = upscaled.json()
    source = Image.open(io.BytesIO(IMG.bear)).size
    assert Image.open(io.BytesIO(httpx.get(item["url"]).content)).size == (source[0] * 2, source[1] * 2)
    streamed = httpx.post(
        f"{edge.url}/v1/generation/text-to-image", content=json.dumps(SMALL), headers={"Accept": "image/png"}
    )
    assert streamed.status_code == 200 and streamed.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(streamed.content)).size == (64, 64)


def test_an_enhance_tab_with_default_settings_runs_grounding_dino_and_sam(fleet: Fleet) -> None:
    fleet.worker()
    edge = fleet.edge()
    body = {
        **SMALL,
        "image_seed": 3,
        "enhance_input_image": b64(IMG.face),
        "enhance_uov_method": "Disabled",
        "enhance_ctrlnets": [{"enhance_enabled": True}],  # `sam` masks, prompt `face`, vit_b
    }
    response = post_json(f"{edge.url}/v2/generation/image-enhance", body)
    assert response.status_code == 200, response.text
    [item] = response.json()
    assert item["finish_reason"] == "SUCCESS", response.headers.get("X-Fleet-Error")
    enhanced = Image.open(io.BytesIO(httpx.get(item["url"]).content))
    assert enhanced.size == Image.open(io.BytesIO(IMG.face)).size
    body = {"image": b64(IMG.face), "mask_model": "sam", "dino_prompt_text": "face", "box_threshold": 1.0}
    mask = httpx.post(f"{edge.url}/v1/tools/generate_mask", content=json.dumps(body), timeout=60)
    assert mask.status_code == 200, mask.text
    decoded = Image.open(io.BytesIO(base64.b64decode(mask.json())))
    assert decoded.size == (64, 80) and decoded.getextrema() == (0, 0)  # nothing scores above 1


def test_models_refresh_and_tools_answer_from_the_worker(fleet: Fleet) -> None:
    fleet.worker()
    edge = fleet.edge()
    models = httpx.post(f"{edge.url}/v1/engines/refresh-models", timeout=30).json()
    assert models["model_filenames"] == ["fleet-tiny-sdxl.safetensors"]
    assert httpx.get(f"{edge.url}/v1/engines/all-models").json() == models
    url = f"{edge.url}/v1/tools/describe-image"
    described = httpx.post(url, files={"image": IMG.face}, timeout=60)
    assert described.status_code == 200, described.text
    assert set(described.json()) == {"describe"} and isinstance(described.json()["describe"], str)
    anime = httpx.post(url, params={"type": "Anime"}, files={"image": IMG.face}, timeout=60)
    assert anime.status_code == 503 and "wd-v1-4-moat-tagger-v2" in anime.json()["detail"]
    body = {"image": b64(IMG.face), "dino_erode_or_dilate": 3}
    mask = httpx.post(f"{edge.url}/v1/tools/generate_mask", content=json.dumps(body), timeout=60)
    assert mask.status_code == 200, mask.text
    decoded = Image.open(io.BytesIO(base64.b64decode(mask.json())))
    assert decoded.format == "PNG" and decoded.size == Image.open(io.BytesIO(IMG.face)).size
    assert httpx.get(f"{edge.url}/v1/engines/clean_vram").json() == {"message": "ok"}
    [item] = httpx.post(
        f"{edge.url}/v1/generation/text-to-image", content=json.dumps(SMALL), timeout=120
    ).json()
    assert item["finish_reason"] == "SUCCESS"
