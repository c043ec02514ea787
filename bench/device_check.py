"""Every engine path once on an accelerator, in float32 and float16, with the tiny models: prints a table.

    python -m bench.device_check --device cuda            # on a GPU machine
    python -m bench.device_check --device cuda --dtypes float16 --vram normal,low,very_low
    python -m bench.device_check --device cpu --dtypes float32

It answers "does every job kind, guidance option, refiner method and sampler run on this device and dtype,
with finite pixels", which the CPU-only test suite cannot, in each VRAM mode asked for (the offload hooks
move models between the CPU and the GPU only on a GPU). It also prints the largest pixel difference
between this device and the CPU for one deterministic run (same seed, float32). The tiny models are written
by the test suite's own builders into a temporary folder.
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
from PIL import Image

from contracts import AdvancedParams, GenerationParams, ImageInputs, ImagePrompt, JobType
from contracts.inputs import CONTROL_DEFAULTS, ControlNetType
from tests.worker.engine.tiny_lora import write_tiny_lora
from tests.worker.tiny_models import write_tiny_image_prompt_models
from tests.worker.tiny_upscaler import tiny_rrdb_weights, write_tiny_upscaler
from worker.engine.folders import ModelFolders
from worker.engine.jobs import JobEngine, JobImages
from worker.engine.loader import ModelLibrary
from worker.engine.loras import LoraAdapters
from worker.engine.runs import GeneratedImage
from worker.engine.sdxl import SDXLEngine
from worker.engine.tiny import TINY_NAME, write_tiny_checkpoint
from worker.engine.vram import VramMode

SAMPLERS = ("euler", "euler_ancestral", "heun", "dpmpp_2m_sde_gpu", "dpmpp_sde_gpu", "uni_pc", "lcm", "ddim")
SOURCE, MASK = "inputs/check/image.png", "inputs/check/mask.png"


def params(steps: int = 3, **advanced: object) -> GenerationParams:
    top = ("sharpness", "guidance_scale", "refiner_model_name", "refiner_switch")
    fields = {key: advanced.pop(key) for key in top if key in advanced}
    return GenerationParams(
        prompt="a red fox in the snow",
        aspect_ratios_selection="64*64",
        image_seed=7,
        advanced_params=AdvancedParams(overwrite_step=steps, **advanced),
        **fields,
    )


def source() -> Image.Image:
    pixels = np.full((64, 64, 3), 40, dtype=np.uint8)
    pixels[16:48, 16:48] = (220, 180, 60)
    return Image.fromarray(pixels)


def mask() -> Image.Image:
    image = Image.new("L", (64, 64), 0)
    image.paste(255, (16, 16, 48, 48))
    return image


def checks(
    jobs: JobEngine, adapters: LoraAdapters
) -> Iterator[tuple[str, Callable[[], list[GeneratedImage]]]]:
    def text(p: GenerationParams) -> Callable[[], list[GeneratedImage]]:
        return lambda: list(
            jobs.run(JobType.TEXT_TO_IMAGE, p, JobImages(ImageInputs()), p.seeds(), lambda _: None)
        )

    def image_job(
        kind: JobType, spec: ImageInputs, p: GenerationParams
    ) -> Callable[[], list[GeneratedImage]]:
        images = JobImages(spec, {SOURCE: source(), MASK: mask()})
        return lambda: list(jobs.run(kind, p, images, p.seeds(), lambda _: None))

    yield "text, defaults (styles, sharpness 2, ADM)", text(params())
    yield "text, sharpness 30, cfg 9 > adaptive 7", text(params(sharpness=30.0, guidance_scale=9.0))
    yield "text, FreeU", text(params(freeu_enabled=True))
    yield "text, refiner joint", text(params(steps=4, refiner_model_name="refiner", refiner_switch=0.5))
    yield (
        "text, refiner separate",
        text(
            params(steps=4, refiner_model_name="refiner", refiner_switch=0.5, refiner_swap_method="separate")
        ),
    )
    for sampler in SAMPLERS:
        yield f"sampler {sampler}", text(params(steps=2, sampler_name=sampler))

    def with_lora() -> list[GeneratedImage]:
        adapters.apply(jobs.sdxl.pipeline, [("lora", 1.0)])
        try:
            return text(params())()
        finally:
            adapters.apply(jobs.sdxl.pipeline, [])

    yield "text, a LoRA", with_lora
    yield (
        "vary (strong)",
        image_job(
            JobType.UPSCALE_VARY, ImageInputs(input_image_key=SOURCE, uov_method="Vary (Strong)"), params()
        ),
    )
    yield (
        "upscale 2x (RRDB)",
        image_job(
            JobType.UPSCALE_VARY, ImageInputs(input_image_key=SOURCE, uov_method="Upscale (2x)"), params()
        ),
    )
    inpaint = ImageInputs(input_image_key=SOURCE, input_mask_key=MASK)
    yield "inpaint", image_job(JobType.INPAINT_OUTPAINT, inpaint, params())
    outpaint = ImageInputs(input_image_key=SOURCE, outpaint_selections=["Left"])
    yield "outpaint", image_job(JobType.INPAINT_OUTPAINT, outpaint, params())
    for cn_type in ("PyraCanny", "CPDS", "ImagePrompt", "FaceSwap"):
        stop, weight = CONTROL_DEFAULTS[ControlNetType(cn_type)]
        prompt = ImagePrompt(image_key=SOURCE, cn_type=cn_type, cn_stop=stop, cn_weight=weight)
        spec = ImageInputs(image_prompts=[prompt])
        yield f"image prompt {cn_type}", image_job(JobType.IMAGE_PROMPT, spec, params())


def run_all(
    models: Path, cache: Path, device: str, dtype: torch.dtype, vram: VramMode = VramMode.NORMAL
) -> list[tuple[str, str, float]]:
    library = ModelLibrary(models, cache, dtype=dtype)
    pipeline = library.load(f"{TINY_NAME}.safetensors")
    sdxl = SDXLEngine(
        pipeline,
        device=device,
        dtype=dtype,
        vram=vram,
        model_name=f"{TINY_NAME}.safetensors",
        refiners=library,
    )
    folders = ModelFolders(models)
    jobs, adapters = JobEngine(sdxl, folders), LoraAdapters(folders)
    rows = []
    for name, check in checks(jobs, adapters):
        started = time.perf_counter()
        try:
            images = check()
            finite = all(np.isfinite(np.asarray(g.image, dtype=np.float32)).all() for g in images)
            flat = all(np.asarray(g.image).std() > 0 for g in images)
            status = "ok" if images and finite and flat else f"BAD (finite={finite}, varied={flat})"
        except Exception as error:
            traceback.print_exc()
            status = f"FAILED {type(error).__name__}: {str(error)[:80]}"
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        rows.append((name, status, time.perf_counter() - started))
    return rows


def cpu_difference(models: Path, cache: Path, device: str) -> float:
    """Largest pixel difference (0..255) between `device` and the CPU, float32, a deterministic sampler."""
    outputs = []
    for where in ("cpu", device):
        library = ModelLibrary(models, cache)
        engine = SDXLEngine(library.load(f"{TINY_NAME}.safetensors"), device=where, model_name=TINY_NAME)
        p = params(sampler_name="euler", scheduler_name="normal")
        outputs.append(np.asarray(next(engine.text_to_image(p, [7], lambda _: None)).image, dtype=np.int16))
    return float(np.abs(outputs[0] - outputs[1]).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtypes", default="float32,float16")
    parser.add_argument("--vram", default="normal", help="VRAM modes, comma-separated: normal,low,very_low")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        models, cache = Path(scratch) / "models", Path(scratch) / "cache"
        write_tiny_checkpoint(models / "checkpoints", cache_dir=cache)
        write_tiny_checkpoint(models / "checkpoints", name="refiner", cache_dir=cache, weight_seed=99)
        write_tiny_image_prompt_models(models)
        write_tiny_upscaler(
            models / "upscale_models" / "fooocus_upscaler_s409985e5.bin", tiny_rrdb_weights(), "fooocus"
        )
        write_tiny_lora(models / "loras" / "lora.safetensors", cache, seed=1)
        failures = 0
        for dtype_name, vram in itertools.product(args.dtypes.split(","), args.vram.split(",")):
            rows = run_all(models, cache, args.device, getattr(torch, dtype_name), VramMode(vram))
            print(f"\n{args.device} {dtype_name} vram {vram}")
            for name, status, seconds in rows:
                print(f"  {name:<42} {status:<60} {seconds * 1000:8.0f} ms")
            failures += sum(status != "ok" for _, status, _ in rows)
        if args.device != "cpu":
            difference = cpu_difference(models, cache, args.device)
            print(f"\nlargest pixel difference {args.device} vs cpu, float32: {difference}")
        print(f"\n{failures} failed")
        raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    main()
