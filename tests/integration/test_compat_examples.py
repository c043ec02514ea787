"""Every request example of the user's Fooocus-API document and of the repo's example clients (spec §10),
replayed unchanged but for image files (small generated ones), against one edge for the module.

No worker runs here: an async example must be accepted (job object, WAITING) with its inputs stored
as PNGs and named in the logged `JobQueued`; a sync example waits `FLEET_SYNC_TIMEOUT_S` and answers
504 with the job object, whose inputs are checked the same way. At the end a real worker, with tiny
models of every kind, runs the image job types and the tools to a real result.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
from PIL import Image

from contracts import JobQueued, JobSucceeded, JobType, OutputImage, job_seq
from contracts.styles import STYLE_NAMES
from contracts.topology import Topology
from devservices.s3 import WeedServer
from storage import output_key
from tests.conftest import _delete_namespace
from tests.fleet import Edge, Fleet, FleetEnv
from tests.integration.compat_support import (
    Images,
    b64,
    fake_tools_worker,
    module_env,
    queued_job,
    store_for,
    stored_png,
)
from tests.integration.helpers import SMALL, finished, poll

pytestmark = pytest.mark.integration
JOB_KEYS = {
    "job_id",
    "job_type",
    "job_stage",
    "job_progress",
    "job_status",
    "job_step_preview",
    "job_result",
}
IMG = Images()


class Compat:
    def __init__(self, env: FleetEnv, fleet: Fleet, edge: Edge, strict: Edge, images_url: str) -> None:
        self.env, self.fleet, self.edge, self.strict, self.images_url = env, fleet, edge, strict, images_url

    @property
    def host(self) -> str:
        return self.edge.url


@pytest.fixture(scope="module")
def images_server() -> Iterator[str]:
    """Serves the test images over HTTP on loopback, plus a redirect to one of them."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "/face.png")
                self.end_headers()
                return
            body = {"/face.png": IMG.face, "/bear.jpg": IMG.bear}.get(self.path)
            if body is None:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="module")
def compat(
    rabbitmq: str,
    s3_server: WeedServer,
    models_dir: Path,
    cache_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    images_server: str,
) -> Iterator[Compat]:
    env = module_env(tmp_path_factory.mktemp("compat"), rabbitmq, s3_server.endpoint, models_dir, cache_dir)
    fleet = Fleet(env)
    try:
        edge = fleet.edge(
            "edge",
            FLEET_ALLOW_PRIVATE_URLS="1",
            FLEET_SYNC_TIMEOUT_S="1",
            FLEET_TOOL_TIMEOUT_S="2",
            FLEET_REFRESH_WAIT_S="2",
        )
        strict = fleet.edge("strict", FLEET_SYNC_TIMEOUT_S="1")
        yield Compat(env, fleet, edge, strict, images_server)
    finally:
        fleet.stop()
        asyncio.run(_delete_namespace(rabbitmq, Topology(env.namespace)))


# ---- helpers -------------------------------------------------------------------------------------------


def accepted(compat: Compat, response: httpx.Response, job_type: JobType, sync: bool = False) -> JobQueued:
    """The job object of an accepted job (a sync one timed out waiting: 504), and its logged job."""
    assert response.status_code == (504 if sync else 200), response.text
    job = response.json()
    assert set(job) == JOB_KEYS
    assert job["job_type"] == job_type.value and job["job_stage"] == "WAITING"
    assert (job["job_progress"], job["job_result"], job["job_step_preview"]) == (0, None, None)
    queued = queued_job(compat.env, job["job_id"])
    assert queued.job_type is job_type
    return queued


def size_of(compat: Compat, key: str | None) -> tuple[int, int]:
    assert key is not None and key.startswith("inputs/")
    return stored_png(compat.env, key).size


def v1_post(
    compat: Compat, path: str, data: dict[str, Any], files: dict[str, bytes | None]
) -> httpx.Response:
    """`requests.post(url, data=params, files=files)` as the examples do: None files are dropped,
    booleans become "True", lists become repeated fields (a dict item its repr)."""
    form = {k: [str(i) for i in v] if isinstance(v, list) else str(v) for k, v in data.items()}
    form = {k: v for k, v in form.items() if v != []}
    parts = [(k, (k, v)) for k, v in files.items() if v is not None]
    if not parts:  # requests still sends multipart when a files dict was given
        parts = [("unused", ("", b""))]
    return httpx.post(f"{compat.host}{path}", data=form, files=parts, timeout=30)


def v2_post(compat: Compat, path: str, params: dict[str, Any], content_type: bool = False) -> httpx.Response:
    headers = {"Content-Type": "application/json"} if content_type else {}
    return httpx.post(f"{compat.host}{path}", content=json.dumps(params), headers=headers, timeout=30)


# ---- upscale / vary ------------------------------------------------------------------------------------


def test_doc_v1_upscale_vary(compat: Compat) -> None:
    response = v1_post(
        compat,
        "/v1/generation/image-upscale-vary",
        {"uov_method": "Upscale (2x)", "async_process": True},
        {"input_image": IMG.bear},
    )
    job = accepted(compat, response, JobType.UPSCALE_VARY)
    assert job.inputs.uov_method == "Upscale (2x)" and job.inputs.upscale_value is None
    assert size_of(compat, job.inputs.input_image_key) == (64, 64)
    assert job.params.save_meta is False  # the v1 form default


def test_doc_and_examples_v2_upscale_vary(compat: Compat) -> None:
    doc = v2_post(
        compat,
        "/v2/generation/image-upscale-vary",
        {"uov_method": "Upscale (2x)", "async_process": True, "input_image": b64(IMG.bear)},
        content_type=True,
    )
    assert size_of(compat, accepted(compat, doc, JobType.UPSCALE_VARY).inputs.input_image_key) == (64, 64)
    for method in ("Upscale (2x)", "Vary (Strong)"):
        params = {"input_image": b64(IMG.prompt0), "performance_selection": "Lightning", "uov_method": method}
        job = accepted(
            compat,
            v2_post(compat, "/v2/generation/image-upscale-vary", {**params, "async_process": True}),
            JobType.UPSCALE_VARY,
        )
        assert (job.inputs.uov_method, job.inputs.upscale_value) == (method, 1.0)
        assert job.params.performance_selection == "Lightning" and job.params.save_meta is True


def test_notebook_v1_upscale_with_invalid_method_is_422(compat: Compat) -> None:
    response = v1_post(
        compat, "/v1/generation/image-upscale-vary", {"uov_method": "Vary"}, {"input_image": IMG.bear}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "uov_method"]
    missing = v1_post(compat, "/v1/generation/image-upscale-vary", {}, {"input_image": IMG.bear})
    assert (missing.status_code, missing.json()["detail"][0]["loc"]) == (422, ["body", "uov_method"])
    no_image = v1_post(compat, "/v1/generation/image-upscale-vary", {"uov_method": "Upscale (2x)"}, {})
    assert (no_image.status_code, no_image.json()["detail"][0]["loc"]) == (422, ["body", "input_image"])


# ---- inpaint / outpaint --------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["image-inpait-outpaint", "image-inpaint-outpaint"])
def test_doc_v1_inpaint_outpaint_both_spellings(compat: Compat, spelling: str) -> None:
    path = f"/v1/generation/{spelling}"
    outpaint = v1_post(
        compat,
        path,
        {"outpaint_selections": "Left,Right", "async_process": True},
        {"input_image": IMG.bear, "input_mask": None},
    )
    job = accepted(compat, outpaint, JobType.INPAINT_OUTPAINT)
    assert job.inputs.outpaint_selections == ["Left", "Right"] and job.inputs.input_mask_key is None
    assert job.inputs.outpaint_distance_left == 0  # the v1 default
    inpaint = v1_post(
        compat,
        path,
        {"prompt": "a cat", "async_process": True},
        {"input_image": IMG.source, "input_mask": IMG.mask},
    )
    job = accepted(compat, inpaint, JobType.INPAINT_OUTPAINT)
    assert (
        size_of(compat, job.inputs.input_image_key)
        == size_of(compat, job.inputs.input_mask_key)
        == (128, 128)
    )
    assert job.params.prompt == "a cat"


def test_examples_v1_outpaint_left_top_with_spaces_is_stripped(compat: Compat) -> None:
    response = v1_post(
        compat,
        "/v1/generation/image-inpaint-outpaint",
        {"prompt": "a cat", "outpaint_selections": "Left, Top", "async_process": True},
        {"input_image": IMG.source, "input_mask": IMG.mask},
    )
    assert accepted(compat, response, JobType.INPAINT_OUTPAINT).inputs.outpaint_selections == ["Left", "Top"]
    bad = v1_post(
        compat,
        "/v1/generation/image-inpaint-outpaint",
        {"outpaint_selections": "Up"},
        {"input_image": IMG.bear},
    )
    assert (bad.status_code, bad.json()["detail"][0]["loc"][:2]) == (422, ["body", "outpaint_selections"])


@pytest.mark.parametrize("spelling", ["image-inpait-outpaint", "image-inpaint-outpaint"])
def test_doc_v2_inpaint_outpaint_both_spellings(compat: Compat, spelling: str) -> None:
    path = f"/v2/generation/{spelling}"
    outpaint = v2_post(
        compat,
        path,
        {
            "input_image": b64(IMG.bear),
            "input_mask": None,
            "outpaint_selections": ["Left", "Right"],
            "async_process": True,
        },
        content_type=True,
    )
    job = accepted(compat, outpaint, JobType.INPAINT_OUTPAINT)
    assert job.inputs.outpaint_selections == ["Left", "Right"] and job.inputs.outpaint_distance_top == -1
    inpaint = v2_post(
        compat,
        path,
        {
            "prompt": "a cat",
            "input_image": b64(IMG.source),
            "input_mask": b64(IMG.mask),
            "async_process": True,
        },
        content_type=True,
    )
    job = accepted(compat, inpaint, JobType.INPAINT_OUTPAINT)
    assert job.inputs.input_image_key and job.inputs.input_mask_key


def test_examples_v2_inpaint_sync_and_empty_image_is_text_to_image(compat: Compat) -> None:
    body = {
        "prompt": "a cat",
        "performance_selection": "Speed",
        "input_image": b64(IMG.source),
        "input_mask": b64(IMG.mask),
        "outpaint_selections": ["Left", "Right"],
        "async_process": False,
    }
    job = accepted(
        compat,
        v2_post(compat, "/v2/generation/image-inpaint-outpaint", body),
        JobType.INPAINT_OUTPAINT,
        sync=True,
    )
    assert job.inputs.input_mask_key and job.inputs.outpaint_selections == ["Left", "Right"]
    plain = v2_post(compat, "/v2/generation/image-inpaint-outpaint", {**SMALL, "async_process": True})
    assert accepted(compat, plain, JobType.INPAINT_OUTPAINT).inputs.keys() == []
    unfetchable = v2_post(
        compat, "/v2/generation/image-inpaint-outpaint", {"input_image": f"{compat.images_url}/missing.png"}
    )
    assert unfetchable.status_code == 422 and unfetchable.json()["detail"][0]["loc"] == [
        "body",
        "input_image",
    ]


# ---- image prompt --------------------------------------------------------------------------------------


def test_doc_v1_image_prompt(compat: Compat) -> None:
    path = "/v1/generation/image-prompt"
    files = {"input_image": IMG.bear, "input_mask": None, "cn_img1": None, "cn_img2": None}
    outpaint = v1_post(compat, path, {"outpaint_selections": ["Left", "Right"], "image_prompts": []}, files)
    job = accepted(compat, outpaint, JobType.IMAGE_PROMPT, sync=True)
    assert job.inputs.outpaint_selections == ["Left", "Right"] and job.inputs.image_prompts == []
    inpaint = v1_post(
        compat,
        path,
        {"prompt": "1girl sitting on the chair", "image_prompts": [], "async_process": True},
        {"input_image": IMG.source, "input_mask": IMG.mask},
    )
    assert accepted(compat, inpaint, JobType.IMAGE_PROMPT).inputs.input_mask_key
    slots = {"cn_stop": 0.6, "cn_weight": 0.6, "cn_type": "ImagePrompt"}
    prompted = v1_post(
        compat,
        path,
        {
            "prompt": "1girl sitting on the chair",
            "image_prompts": [slots, slots],
        },  # sent as repr strings: ignored
        {"cn_img1": IMG.bear, "cn_img2": IMG.source},
    )
    job = accepted(compat, prompted, JobType.IMAGE_PROMPT, sync=True)
    # the form's cn_stop/cn_weight are absent, so each slot takes its type's defaults
    assert [(p.cn_type, p.cn_stop, p.cn_weight) for p in job.inputs.image_prompts] == [
        ("ImagePrompt", 0.5, 0.6)
    ] * 2
    assert [size_of(compat, p.image_key) for p in job.inputs.image_prompts] == [(64, 64), (128, 128)]


def test_examples_v1_image_prompt_slots_and_types(compat: Compat) -> None:
    response = v1_post(
        compat,
        "/v1/generation/image-prompt",
        {
            "prompt": "a cat",
            "cn_stop2": "0.9",
            "cn_weight2": "1.5",
            "cn_type2": "PyraCanny",
            "async_process": "true",
        },
        {"cn_img1": IMG.prompt0, "cn_img2": IMG.prompt1, "cn_img3": b""},
    )
    prompts = accepted(compat, response, JobType.IMAGE_PROMPT).inputs.image_prompts
    assert [(p.cn_type, p.cn_stop, p.cn_weight) for p in prompts] == [
        ("ImagePrompt", 0.5, 0.6),
        ("PyraCanny", 0.9, 1.5),
    ]


def test_doc_v2_image_prompt(compat: Compat) -> None:
    path = "/v2/generation/image-prompt"
    outpaint = v2_post(
        compat,
        path,
        {"input_image": b64(IMG.bear), "outpaint_selections": ["Left", "Right"], "image_prompts": []},
        True,
    )
    assert accepted(compat, outpaint, JobType.IMAGE_PROMPT, sync=True).inputs.outpaint_selections == [
        "Left",
        "Right",
    ]
    inpaint = v2_post(
        compat,
        path,
        {
            "prompt": "1girl sitting on the chair",
            "input_image": b64(IMG.source),
            "input_mask": b64(IMG.mask),
            "image_prompts": [],
            "async_process": True,
        },
        True,
    )
    assert accepted(compat, inpaint, JobType.IMAGE_PROMPT).inputs.input_mask_key
    slot = {"cn_stop": 0.6, "cn_weight": 0.6, "cn_type": "ImagePrompt"}
    prompted = v2_post(
        compat,
        path,
        {
            "prompt": "1girl sitting on the chair",
            "image_prompts": [{"cn_img": b64(IMG.source), **slot}, {"cn_img": b64(IMG.bear), **slot}],
        },
        True,
    )
    job = accepted(compat, prompted, JobType.IMAGE_PROMPT, sync=True)
    assert [(p.cn_stop, p.cn_weight) for p in job.inputs.image_prompts] == [(0.6, 0.6), (0.6, 0.6)]
    assert job.inputs.input_image_key is None
    missing = v2_post(compat, path, {"prompt": "no image_prompts"})
    assert (missing.status_code, missing.json()["detail"][0]["loc"]) == (422, ["body", "image_prompts"])


def test_examples_v2_face_swap_with_data_uri_and_url(compat: Compat) -> None:
    response = v2_post(
        compat,
        "/v2/generation/image-prompt",
        {
            "prompt": "a man",
            "aspect_ratios_selection": "896*1152",
            "async_process": True,
            "image_prompts": [
                {"cn_img": "data:image/png;base64," + b64(IMG.face), "cn_stop": 0.5, "cn_weight": 0.6},
                {
                    "cn_img": f"{compat.images_url}/redirect",
                    "cn_stop": 0.9,
                    "cn_weight": 0.75,
                    "cn_type": "FaceSwap",
                },
            ],
        },
    )
    prompts = accepted(compat, response, JobType.IMAGE_PROMPT).inputs.image_prompts
    assert [p.cn_type for p in prompts] == ["ImagePrompt", "FaceSwap"]
    assert [size_of(compat, p.image_key) for p in prompts] == [(64, 80), (64, 80)]


def test_doc_and_examples_text_to_image_with_ip(compat: Compat) -> None:
    slot = {"cn_stop": 0.6, "cn_weight": 0.6, "cn_type": "ImagePrompt"}
    doc = v2_post(
        compat,
        "/v2/generation/text-to-image-with-ip",
        {
            "prompt": "A bear",
            "image_prompts": [{"cn_img": b64(IMG.source), **slot}, {"cn_img": b64(IMG.bear), **slot}],
        },
        True,
    )
    job = accepted(compat, doc, JobType.TEXT_TO_IMAGE, sync=True)
    assert len(job.inputs.image_prompts) == 2 and job.inputs.input_image_key is None
    example = v2_post(
        compat,
        "/v2/generation/text-to-image-with-ip",
        {
            "prompt": "a cat",
            "outpaint_selections": ["Left"],  # injected by the example's helper: ignored
            "async_process": True,
            "image_prompts": [
                {"cn_img": b64(IMG.prompt1), "cn_stop": 0.6, "cn_weight": 0.8},
                {"cn_img": b64(IMG.prompt0), "cn_stop": 0.6, "cn_weight": 0.6},
            ],
        },
    )
    job = accepted(compat, example, JobType.TEXT_TO_IMAGE)
    assert [p.cn_weight for p in job.inputs.image_prompts] == [
        0.8,
        0.6,
    ] and job.inputs.outpaint_selections == []


# ---- enhance -------------------------------------------------------------------------------------------


def test_examples_v1_image_enhance(compat: Compat) -> None:
    response = v1_post(
        compat,
        "/v1/generation/image-enhance",
        {
            "enhance_checkbox": True,
            "enhance_uov_method": "Disabled",
            "enhance_enabled_1": True,
            "enhance_mask_dino_prompt_1": "face",
            "enhance_enabled_2": True,
            "enhance_mask_dino_prompt_2": "eyes",
        },
        {"enhance_input_image": IMG.face},
    )
    job = accepted(compat, response, JobType.ENHANCE, sync=True)
    assert job.inputs.enhance_uov_method == "Disabled" and job.params.image_number == 1
    assert [t.enhance_mask_dino_prompt for t in job.inputs.enhance_tabs] == ["face", "eyes"]
    assert size_of(compat, job.inputs.enhance_input_key) == (64, 80)
    missing = v1_post(compat, "/v1/generation/image-enhance", {"enhance_enabled_1": True}, {})
    assert (missing.status_code, missing.json()["detail"][0]["loc"]) == (422, ["body", "enhance_input_image"])


def test_examples_v2_image_enhance_from_a_url(compat: Compat) -> None:
    body = {
        "prompt": "",
        "enhance_input_image": f"{compat.images_url}/face.png",
        "enhance_uov_method": "Vary (Strong)",
        "enhance_uov_processing_order": "Before First Enhancement",
        "enhance_uov_prompt_type": "Original Prompts",
        "enhance_ctrlnets": [
            {
                "enhance_enabled": True,
                "enhance_mask_dino_prompt": "face",
                "enhance_mask_model": "sam",
                "enhance_mask_sam_model": "vit_b",
                "enhance_inpaint_strength": 1,
                "enhance_inpaint_respective_field": 0.618,
            }
        ],
        "async_process": True,
    }
    job = accepted(compat, v2_post(compat, "/v2/generation/image-enhance", body, True), JobType.ENHANCE)
    assert [t.enhance_mask_model for t in job.inputs.enhance_tabs] == ["sam"]
    assert size_of(compat, job.inputs.enhance_input_key) == (64, 80)
    # the same URL on an edge that keeps the default: loopback is refused before anything is queued
    refused = httpx.post(
        f"{compat.strict.url}/v2/generation/image-enhance", content=json.dumps(body), timeout=30
    )
    assert refused.status_code == 422, refused.text
    [detail] = refused.json()["detail"]
    assert detail["loc"] == ["body", "enhance_input_image"] and "private" in detail["msg"]
    no_tabs = v2_post(compat, "/v2/generation/image-enhance", {"enhance_input_image": b64(IMG.face)})
    assert (no_tabs.status_code, no_tabs.json()["detail"][0]["loc"]) == (422, ["body", "enhance_ctrlnets"])


# ---- bad inputs ----------------------------------------------------------------------------------------


def test_bad_images_and_advanced_params_are_422_and_nothing_is_queued(compat: Compat) -> None:
    before = httpx.get(f"{compat.host}/v1/generation/job-queue").json()["running_size"]
    truncated = IMG.source[: len(IMG.source) // 2]
    cases = [
        (
            v1_post(
                compat,
                "/v1/generation/image-upscale-vary",
                {"uov_method": "Upscale (2x)"},
                {"input_image": truncated},
            ),
            ["body", "input_image"],
        ),
        (
            v1_post(
                compat,
                "/v1/generation/image-upscale-vary",
                {"uov_method": "Upscale (2x)"},
                {"input_image": b"not an image"},
            ),
            ["body", "input_image"],
        ),
        (
            v1_post(
                compat,
                "/v1/generation/image-upscale-vary",
                {"uov_method": "Upscale (2x)", "advanced_params": "{not json"},
                {"input_image": IMG.bear},
            ),
            ["body", "advanced_params"],
        ),
        (
            v1_post(
                compat,
                "/v1/generation/image-upscale-vary",
                {"uov_method": "Upscale (2x)", "advanced_params": '{"overwrite_step": 999}'},
                {"input_image": IMG.bear},
            ),
            ["body", "advanced_params", "overwrite_step"],
        ),
        (
            v1_post(
                compat,
                "/v1/generation/image-upscale-vary",
                {"uov_method": "Upscale (2x)", "loras": '[{"model_name": "x", "weight": 0.5}]'},
                {"input_image": IMG.bear},
            ),
            ["body", "loras", 0, "enabled"],
        ),
        (
            v2_post(compat, "/v2/generation/image-upscale-vary", {"input_image": "%%%"}),
            ["body", "input_image"],
        ),
        (v2_post(compat, "/v2/generation/image-upscale-vary", {"input_image": ""}), ["body", "input_image"]),
        (
            v2_post(
                compat,
                "/v2/generation/image-upscale-vary",
                {"input_image": b64(IMG.bear), "uov_method": "Upscale (Custom)", "upscale_value": None},
            ),
            ["body", "upscale_value"],
        ),
        (
            v2_post(compat, "/v2/generation/image-prompt", {"image_prompts": [{"cn_img": b64(truncated)}]}),
            ["body", "image_prompts", 0, "cn_img"],
        ),
        (
            v2_post(compat, "/v2/generation/image-inpaint-outpaint", {"input_mask": b64(IMG.mask)}),
            ["body", "input_image"],
        ),
    ]
    for response, loc in cases:
        assert response.status_code == 422, (loc, response.text)
        assert response.json()["detail"][0]["loc"] == loc
    assert httpx.get(f"{compat.host}/v1/generation/job-queue").json()["running_size"] == before


# ---- engines and tools ---------------------------------------------------------------------------------


def test_engines_styles_models_refresh_and_clean_vram(compat: Compat) -> None:
    styles = httpx.get(f"{compat.host}/v1/engines/styles").json()
    assert styles == list(STYLE_NAMES) and len(styles) == 279 and styles[:2] == ["Fooocus V2", "Random Style"]
    assert httpx.get(f"{compat.host}/v1/engines/all-models").json() == {
        "model_filenames": [],
        "lora_filenames": [],
    }
    assert httpx.get(f"{compat.host}/v1/engines/clean_vram").json() == {"message": "ok"}
    with fake_tools_worker(compat.env, models=("a.safetensors", "b.safetensors"), loras=("l.safetensors",)):
        refreshed = httpx.post(f"{compat.host}/v1/engines/refresh-models", timeout=30).json()
        expected = {
            "model_filenames": ["a.safetensors", "b.safetensors"],
            "lora_filenames": ["l.safetensors"],
        }
        assert refreshed == expected
        assert httpx.get(f"{compat.host}/v1/engines/all-models").json() == expected


def test_tools_describe_and_generate_mask(compat: Compat) -> None:
    no_worker = httpx.post(f"{compat.host}/v1/tools/describe-image", files={"image": IMG.face}, timeout=30)
    assert no_worker.status_code == 503 and "No worker" in no_worker.json()["detail"]
    with fake_tools_worker(compat.env, describe="a face") as worker:
        # the document's client sends `type` (an alias here); the notebook too
        described = httpx.post(
            f"{compat.host}/v1/tools/describe-image",
            params={"type": "Anime"},
            files={"image": IMG.face},
            timeout=30,
        )
        assert described.status_code == 200 and described.json() == {"describe": "a face"}
        assert worker.requests[-1]["image_type"] == "Anime"
        mask = httpx.post(f"{compat.host}/v1/tools/generate_mask", json={"image": b64(IMG.bear)}, timeout=30)
        assert mask.status_code == 200
        decoded = Image.open(io.BytesIO(base64.b64decode(mask.json())))
        assert decoded.format == "PNG" and decoded.size == (64, 64)
        assert worker.requests[-1]["mask_model"] == "isnet-general-use"
    with fake_tools_worker(compat.env, mask_error="model file sam_vit_b.pth is missing"):
        failed = httpx.post(
            f"{compat.host}/v1/tools/generate_mask", json={"image": b64(IMG.bear)}, timeout=30
        )
        assert failed.status_code == 503 and "sam_vit_b.pth is missing" in failed.json()["detail"]
    bad = httpx.post(
        f"{compat.host}/v1/tools/generate_mask", json={"image": b64(IMG.bear), "mask_model": "x"}
    )
    assert (bad.status_code, bad.json()["detail"][0]["loc"]) == (422, ["body", "mask_model"])


# ---- job-history delete --------------------------------------------------------------------------------


async def _finish_job_by_hand(env: FleetEnv, job_id: str, key: str) -> None:
    """Stand in for the worker: store an output and log the job's success."""
    store = store_for(env)
    await store.put(key, IMG.prompt1, "image/png")
    event = JobSucceeded(
        job_id=job_id, seq=job_seq(1, 9), images=[OutputImage(key=key, seed=1)], worker_id="w", run_ms=1
    )
    connection = await aio_pika.connect(env.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(Topology(env.namespace).events.name)
        await exchange.publish(aio_pika.Message(event.model_dump_json().encode()), routing_key=event.type)


def test_job_history_delete_removes_the_job_everywhere(compat: Compat) -> None:
    response = v2_post(
        compat, "/v2/generation/image-upscale-vary", {"input_image": b64(IMG.bear), "async_process": True}
    )
    job = accepted(compat, response, JobType.UPSCALE_VARY)
    key = output_key(datetime.now(UTC).date(), f"{job.job_id}-0.png")
    asyncio.run(_finish_job_by_hand(compat.env, job.job_id, key))
    for edge in (compat.edge, compat.strict):
        poll(edge.url, job.job_id, finished)
    store = store_for(compat.env)
    assert asyncio.run(store.exists(key)) and asyncio.run(store.exists(job.inputs.input_image_key or ""))
    history = f"{compat.host}/v1/generation/job-history"
    deleted = httpx.get(history, params={"delete": "true", "job_id": job.job_id}).json()
    assert deleted == {"message": "Deleted"}
    for edge in (compat.edge, compat.strict):  # every edge agrees, through the log
        poll(edge.url, job.job_id, lambda j: j["job_type"] == "Not Found", timeout=10)
        listed = httpx.get(f"{edge.url}/v1/generation/job-history").json()
        assert job.job_id not in {h["job_id"] for h in listed["history"] + listed["queue"]}
    assert not asyncio.run(store.exists(key))
    assert not asyncio.run(store.exists(job.inputs.input_image_key or ""))
    again = httpx.get(history, params={"delete": "true", "job_id": job.job_id}).json()
    assert again == {"message": "Not found"}


def test_openapi_describes_the_request_bodies(compat: Compat) -> None:
    spec = httpx.get(f"{compat.host}/docs/openapi.json").json()
    paths = spec["paths"]
    for path, content_type in (
        ("/v2/generation/image-upscale-vary", "application/json"),
        ("/v2/generation/image-inpaint-outpaint", "application/json"),
        ("/v2/generation/image-prompt", "application/json"),
        ("/v2/generation/image-enhance", "application/json"),
        ("/v2/generation/text-to-image-with-ip", "application/json"),
        ("/v1/generation/image-upscale-vary", "multipart/form-data"),
        ("/v1/generation/image-inpaint-outpaint", "multipart/form-data"),
        ("/v1/generation/image-prompt", "multipart/form-data"),
        ("/v1/generation/image-enhance", "multipart/form-data"),
        ("/v1/tools/generate_mask", "application/json"),
    ):
        schema = paths[path]["post"]["requestBody"]["content"][content_type]["schema"]
        assert schema, path
    upscale = paths["/v2/generation/image-upscale-vary"]["post"]["requestBody"]["content"]["application/json"]
    assert upscale["schema"]["required"] == ["input_image"]
    assert "uov_method" in upscale["schema"]["properties"]
    assert "/v1/engines/all-models" in paths and "/v1/generation/image-inpait-outpaint" in paths
