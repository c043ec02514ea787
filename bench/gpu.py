"""The worker's engine against plain diffusers: the same text-to-image job through `SDXLEngine` and
through `StableDiffusionXLPipeline` on the same weights, eager and (with `--compile`) with the UNet
compiled; prints each time, the ratio, and the peak GPU memory.

    python -m bench.gpu --device cuda --dtype float16 --size full --steps 30 --compile   # on a GPU
    python -m bench.gpu --device cuda --size full --steps 30 --vram low       # a VRAM mode's peak
    python -m bench.gpu                                       # the CPU smoke CI runs: tiny model, 2 steps

`--size full` builds the full SDXL architecture (the shipped base configs: a 2.6 B-parameter UNet, both
text encoders, the VAE) with random weights at 1024×1024; `--size tiny` the test suite's tiny model at
64×64. Random weights make no picture worth looking at, but the same work as a real checkpoint.
Targets (issue #11): the engine at most 1.0× plain diffusers eager, and 0.8× with compile; peak GPU
memory at least 30% lower with `--vram low` than `normal` (each mode is one run: the peaks do not mix).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from diffusers import AutoencoderKL, StableDiffusionXLPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from contracts import AdvancedParams, GenerationParams
from worker.engine import configs
from worker.engine.devices import DTYPES, placement
from worker.engine.sdxl import SDXLEngine
from worker.engine.tiny import assemble_pipeline, build_tiny_pipeline
from worker.engine.vram import VRAM_SETTINGS

SIDES = {"full": 1024, "tiny": 64}
PROMPT = "a lighthouse on a cliff at dusk"


def full_pipeline(cache_dir: Path, device: str, dtype: torch.dtype) -> StableDiffusionXLPipeline:
    """SDXL base's architecture from the shipped configs, random weights, built on `device`."""
    base = configs.SDXL_BASE

    def config(part: str) -> dict[str, object]:
        return json.loads((base / part / "config.json").read_text())  # type: ignore[no-any-return]

    torch.manual_seed(0)
    with torch.device(device):
        unet = UNet2DConditionModel.from_config(config("unet"))
        vae = AutoencoderKL.from_config(config("vae"))
        text_encoder = CLIPTextModel(CLIPTextConfig.from_json_file(base / "text_encoder" / "config.json"))
        text_encoder_2 = CLIPTextModelWithProjection(
            CLIPTextConfig.from_json_file(base / "text_encoder_2" / "config.json")
        )
    return assemble_pipeline(unet, vae, text_encoder, text_encoder_2, cache_dir).to(dtype=dtype)


def timed(run: Callable[[], object], device: str, repeats: int) -> tuple[float, float]:
    """(median seconds of `repeats` runs after one warm-up, peak GPU memory in GiB or 0 on the CPU)."""
    run()  # warm-up: kernels, caches, compilation
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        run()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - began)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else 0.0
    return sorted(times)[len(times) // 2], peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto", choices=["auto", *DTYPES])
    parser.add_argument("--size", default="tiny", choices=sorted(SIDES))
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--compile", action="store_true", help="also time both with the UNet compiled")
    parser.add_argument("--vram", default="normal", choices=VRAM_SETTINGS, help="the worker's FLEET_VRAM")
    args = parser.parse_args()
    chosen = placement(args.device, args.dtype, args.vram)
    device, dtype, side = chosen.device, chosen.dtype, SIDES[args.size]
    with tempfile.TemporaryDirectory() as scratch:
        if args.size == "full":
            pipeline = full_pipeline(Path(scratch), device, dtype)
        else:
            pipeline = build_tiny_pipeline(Path(scratch))
        engine = SDXLEngine(pipeline, device=device, dtype=dtype, vram=chosen.vram)
        params = GenerationParams(
            prompt=PROMPT,
            aspect_ratios_selection=f"{side}*{side}",
            image_number=1,
            image_seed=7,
            advanced_params=AdvancedParams(overwrite_step=args.steps),
        )

        def ours() -> object:
            return list(engine.text_to_image(params, [7], lambda info: None))

        def plain() -> object:
            generator = torch.Generator("cpu").manual_seed(7)
            return pipeline(
                PROMPT,
                num_inference_steps=args.steps,
                height=side,
                width=side,
                guidance_scale=params.guidance_scale,
                generator=generator,
            ).images

        print(
            f"{chosen.name}, {chosen.dtype_name}, vram {chosen.vram},"
            f" {args.size} {side}×{side}, {args.steps} steps"
        )
        modes = ["eager", "compiled"] if args.compile else ["eager"]
        for mode in modes:
            if mode == "compiled":
                pipeline.unet = torch.compile(pipeline.unet)
            engine_s, engine_peak = timed(ours, device, args.repeats)
            plain_s, plain_peak = timed(plain, device, args.repeats)
            print(f"{mode:9} engine    {engine_s:8.2f} s   peak {engine_peak:6.2f} GiB")
            print(f"{mode:9} diffusers {plain_s:8.2f} s   peak {plain_peak:6.2f} GiB")
            print(f"{mode:9} ratio     {engine_s / plain_s:8.2f}")


if __name__ == "__main__":
    main()
