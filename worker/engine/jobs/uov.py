"""Upscale or vary (fooocus-engine.md §5): img2img from the input at Fooocus's sizes, or from its upscale
(the super-resolution model of `models/upscale_models/`, then Lanczos); Fast 2x and very large upscales
are returned without diffusion."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from PIL import Image

from worker.engine.images import JobImages
from worker.engine.img2img import FAST_2X, UPSCALE_DENOISE, VARY_DENOISE, denoise_schedule, uov_source
from worker.engine.jobs.tasks import IMG2IMG, ImageRun, image_runs
from worker.engine.runs import GeneratedImage, StepCallback

if TYPE_CHECKING:
    from contracts.params import GenerationParams
    from worker.engine.jobs.engine import JobEngine


def upscale_or_vary(
    jobs: JobEngine, params: GenerationParams, inputs: JobImages, seeds: list[int], on_step: StepCallback
) -> Iterator[GeneratedImage]:
    """Vary (Subtle/Strong), Upscale (1.5x/2x/Custom) by img2img; Upscale (Fast 2x) upscales only."""
    image = inputs.image(inputs.spec.input_image_key, "an input image (`input_image`)")
    method = inputs.spec.uov_method.value
    if method == "Disabled":
        raise ValueError("`uov_method` is Disabled: there is nothing to upscale or vary")
    jobs.check_seeds(params, seeds)
    source, direct = source_for(jobs, image, method, inputs.spec.upscale_value)
    return uov_images(jobs, source, direct, method, image_runs(params, seeds, on_step))


def uov_images(
    jobs: JobEngine, source: Image.Image, direct: bool, method: str, runs: Iterator[ImageRun]
) -> Iterator[GeneratedImage]:
    """One image per run from `source` (upscaled once per job, as Fooocus does); a `direct` source is
    the result itself: Fast 2x gives one image, whatever `image_number` says."""
    for run in runs:
        if direct:
            yield jobs.generated(run, source)
            if method == FAST_2X:
                return
            continue
        yield jobs.generated(run, refine(jobs, run, source, method))


def uov_one(
    jobs: JobEngine, run: ImageRun, image: Image.Image, method: str, upscale_value: float | None = None
) -> Image.Image:
    """One upscaled or varied image of `image` (enhance's before/after step)."""
    source, direct = source_for(jobs, image, method, upscale_value)
    return source if direct else refine(jobs, run, source, method)


def refine(jobs: JobEngine, run: ImageRun, source: Image.Image, method: str) -> Image.Image:
    """img2img from `source` with Fooocus's denoise and steps for `method`."""
    advanced = run.params.advanced_params
    if method.startswith("Vary"):
        override = advanced.overwrite_vary_strength
        denoise = override if override > 0 else VARY_DENOISE[method]
        steps = run.params.steps
    else:
        override = advanced.overwrite_upscale_strength
        denoise = override if override > 0 else UPSCALE_DENOISE
        overwrite_step = advanced.overwrite_step
        steps = overwrite_step if overwrite_step > 0 else run.params.performance_selection.upscale_steps
    schedule = denoise_schedule(steps, denoise)
    if schedule is None:
        return source
    total, strength = schedule
    return jobs.diffuse(IMG2IMG, run, image=source, strength=strength, num_inference_steps=total)


def source_for(
    jobs: JobEngine, image: Image.Image, method: str, upscale_value: float | None
) -> tuple[Image.Image, bool]:
    """The image img2img starts from, and whether it is already the result (Fast 2x, very large)."""
    return uov_source(image, method, upscale_value, jobs.limits, jobs.super_resolve)
