"""The real worker process runs image jobs and tools: a vary and an inpaint job published straight to
the work queue with inputs in S3, a describe RPC on a tiny BLIP, and the refresh/release commands."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import time
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import pytest
from faststream.rabbit import RabbitBroker
from PIL import Image

from contracts import (
    DescribeImage,
    GenerationParams,
    ImageInputs,
    ImagePrompt,
    JobQueued,
    JobType,
    RefreshModels,
    ReleaseMemory,
    ToolResult,
    WorkerHeartbeat,
)
from contracts.params import AdvancedParams
from contracts.topology import Topology
from messaging import publish_event
from storage import ObjectStore, StorageSettings
from tests.fleet import Fleet, FleetEnv
from tests.integration.helpers import read_log, terminal_events
from tests.worker.tiny_blip import write_tiny_blip
from tests.worker.tiny_models import write_tiny_image_prompt_models

pytestmark = pytest.mark.integration


@pytest.fixture
def task_env(fleet_env: FleetEnv, tmp_path: Path) -> FleetEnv:
    """The shared tiny checkpoint plus a tiny BLIP captioner and a LoRA file, in a folder of this test."""
    models = tmp_path / "models"
    models.mkdir()
    (models / "checkpoints").symlink_to(fleet_env.models_dir / "checkpoints", target_is_directory=True)
    write_tiny_blip(models / "captioners" / "blip-image-captioning-base")
    (models / "loras").mkdir()
    write_tiny_image_prompt_models(models)
    return dataclasses.replace(fleet_env, models_dir=models)


@pytest.fixture
def task_fleet(task_env: FleetEnv) -> Iterator[Fleet]:
    running = Fleet(task_env)
    yield running
    running.stop()


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def store_for(env: FleetEnv) -> ObjectStore:
    return ObjectStore(
        StorageSettings(endpoint=env.s3_endpoint, access_key="any", secret_key="any", bucket=env.bucket)
    )


def source() -> Image.Image:
    image = Image.new("RGB", (64, 64), (30, 90, 150))
    image.paste((240, 200, 40), (16, 16, 48, 48))
    return image


def mask() -> Image.Image:
    image = Image.new("RGBA", (64, 64), (0, 0, 0, 255))
    image.paste((255, 255, 255, 255), (24, 24, 40, 40))
    return image


def job(job_id: str, job_type: JobType, inputs: ImageInputs) -> JobQueued:
    params = GenerationParams(
        prompt="a cat",
        image_seed=5,
        style_selections=[],
        aspect_ratios_selection="64*64",
        advanced_params=AdvancedParams(overwrite_step=2),
    )
    return JobQueued(job_id=job_id, seq=0, job_type=job_type, params=params, inputs=inputs)


async def _publish(env: FleetEnv, jobs: list[JobQueued], images: dict[str, bytes]) -> None:
    store = store_for(env)
    for key, data in images.items():
        await store.put(key, data, "image/png")
    async with RabbitBroker(env.amqp_url) as broker:
        await broker.publish(ReleaseMemory(), exchange=Topology(env.namespace).control)
        for queued in jobs:
            await publish_event(broker, Topology(env.namespace), queued)


def wait_terminal(env: FleetEnv, job_ids: list[str], timeout: float = 120) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = read_log(env.amqp_url, env.namespace, idle_s=0.5)
        found = {job_id: terminal_events(events, job_id) for job_id in job_ids}
        if all(found.values()):
            return {job_id: ends[0] for job_id, ends in found.items()}
        time.sleep(0.5)
    raise TimeoutError(f"jobs {job_ids} never ended")


def test_vary_inpaint_and_image_prompt_jobs_succeed_on_the_worker(
    task_fleet: Fleet, task_env: FleetEnv
) -> None:
    worker = task_fleet.worker()
    vary = job(
        "vary-1",
        JobType.UPSCALE_VARY,
        ImageInputs(input_image_key="inputs/vary-1/a.png", uov_method="Vary (Subtle)"),
    )
    inpaint = job(
        "inpaint-1",
        JobType.INPAINT_OUTPAINT,
        ImageInputs(input_image_key="inputs/inpaint-1/a.png", input_mask_key="inputs/inpaint-1/m.png"),
    )
    slots = [
        ImagePrompt(image_key="inputs/prompt-1/a.png", cn_type="ImagePrompt", cn_stop=0.5, cn_weight=0.6),
        ImagePrompt(image_key="inputs/prompt-1/a.png", cn_type="PyraCanny", cn_stop=0.5, cn_weight=1.0),
    ]
    prompted = job("prompt-1", JobType.IMAGE_PROMPT, ImageInputs(image_prompts=slots))
    images = {
        "inputs/vary-1/a.png": png(source()),
        "inputs/inpaint-1/a.png": png(source()),
        "inputs/inpaint-1/m.png": png(mask()),
        "inputs/prompt-1/a.png": png(source()),
    }
    asyncio.run(_publish(task_env, [vary, inpaint, prompted], images))
    ends = wait_terminal(task_env, ["vary-1", "inpaint-1", "prompt-1"])
    for end in ends.values():
        assert end.type == "job.succeeded", end  # type: ignore[attr-defined]
    store = store_for(task_env)
    [inpainted] = ends["inpaint-1"].images  # type: ignore[attr-defined]
    out = Image.open(io.BytesIO(asyncio.run(store.get(inpainted.key)))).convert("RGB")
    assert out.size == (64, 64) and out.getpixel((2, 2)) == (30, 90, 150)  # unmasked pixels kept
    assert "released memory" in worker.log()


async def _tools_round_trip(env: FleetEnv) -> tuple[ToolResult, ToolResult, WorkerHeartbeat]:
    topology = Topology(env.namespace)
    await store_for(env).put("inputs/tool/a.png", png(source()), "image/png")
    connection = await aio_pika.connect(env.amqp_url)
    async with connection, RabbitBroker(env.amqp_url) as broker:
        channel = await connection.channel()
        live = await channel.get_exchange(topology.live.name)
        beats = await channel.declare_queue(exclusive=True)
        await beats.bind(live, routing_key="worker.heartbeat")
        photo = await broker.request(
            DescribeImage(image_key="inputs/tool/a.png"), queue=topology.tools, timeout=60
        )
        anime = await broker.request(
            DescribeImage(image_key="inputs/tool/a.png", image_type="Anime"), queue=topology.tools, timeout=60
        )
        lora_dir = env.models_dir / "loras"
        (lora_dir / "new-lora.safetensors").write_bytes(b"")
        await broker.publish(RefreshModels(), exchange=topology.control)
        async with beats.iterator() as messages:
            async for message in messages:
                beat = WorkerHeartbeat.model_validate_json(message.body)
                if beat.loras:
                    break
    return ToolResult.model_validate_json(photo.body), ToolResult.model_validate_json(anime.body), beat


def test_describe_answers_through_the_rpc_and_refresh_reports_new_files(
    task_fleet: Fleet, task_env: FleetEnv
) -> None:
    task_fleet.worker()
    photo, anime, beat = asyncio.run(asyncio.wait_for(_tools_round_trip(task_env), 90))
    assert photo.error is None and photo.text
    assert anime.text is None and "wd-v1-4-moat-tagger-v2.onnx" in (anime.error or "")
    assert beat.loras == ["new-lora.safetensors"] and beat.models == ["fleet-tiny-sdxl.safetensors"]
    # FLEET_DEVICE, FLEET_DTYPE and FLEET_VRAM are auto, on a machine without a GPU.
    assert (beat.device, beat.dtype, beat.vram) == ("cpu", "float32", "normal")
    assert beat.warm == ["fleet-tiny-sdxl.safetensors"]  # loaded at start: its jobs come here first
