"""Image prompts (fooocus-engine.md §7): ControlNets and IP-Adapters on text-to-image, on upscale/vary or
on inpaint, whichever the job's other inputs ask for."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from worker.engine.images import JobImages, round_to
from worker.engine.img2img import FAST_2X
from worker.engine.inpaint import inpaint_canvas
from worker.engine.jobs.inpaint import inpaint_images
from worker.engine.jobs.tasks import image_runs
from worker.engine.jobs.uov import source_for, uov_images, upscale_or_vary
from worker.engine.runs import GeneratedImage, StepCallback

if TYPE_CHECKING:
    from contracts.params import GenerationParams
    from worker.engine.jobs.engine import JobEngine


def image_prompt(
    jobs: JobEngine, params: GenerationParams, inputs: JobImages, seeds: list[int], on_step: StepCallback
) -> Iterator[GeneratedImage]:
    """Image prompts on text-to-image, img2img (uov) or inpaint; none of these → plain text-to-image."""
    spec = inputs.spec
    jobs.check_seeds(params, seeds)
    canvas = inpaint_canvas(params, inputs)
    method = spec.uov_method.value
    if canvas is None and spec.input_image_key and method != "Disabled":
        # Fast 2x has no diffusion for an image prompt to steer.
        if not spec.image_prompts or method == FAST_2X:
            return upscale_or_vary(jobs, params, inputs, seeds, on_step)
        image = inputs.image(spec.input_image_key, "an input image")
        source, direct = source_for(jobs, image, method, spec.upscale_value)
        controls = jobs.controls(params, inputs, source.size)
        runs = image_runs(params, seeds, on_step, controls)
        return uov_images(jobs, source, direct, method, runs)
    size = canvas.image.size if canvas is not None else params.size
    controls = jobs.controls(params, inputs, (round_to(size[0]), round_to(size[1])))
    if canvas is None and not controls.controlnets and not controls.ip_slots:
        return jobs.sdxl.text_to_image(params, seeds, on_step)
    runs = image_runs(params, seeds, on_step, controls)
    if canvas is not None:
        return inpaint_images(jobs, canvas, spec.inpaint_additional_prompt, runs)
    return (jobs.generated(run, jobs.diffuse_text(run)) for run in runs)
