"""Inpaint and outpaint (fooocus-engine.md §6): repaint the masked area, keep every other pixel.

As Fooocus: the crop box around the mask (`crop_box`, by the respective field) is super-resolved when
it is smaller than the checkpoint's native side, resized so its shape ceil is that side (multiples of
64), diffused, resized back and pasted into the canvas.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from worker.engine.images import (
    binary_mask,
    fill_for_inpaint,
    fit_to_latents,
    mask_image,
    paste_outside_mask,
    set_shape_ceil,
    shape_ceil,
)
from worker.engine.img2img import denoise_schedule
from worker.engine.inpaint import Canvas, crop_box, inpaint_prompt
from worker.engine.jobs.tasks import INPAINT, ImageRun
from worker.engine.runs import GeneratedImage

if TYPE_CHECKING:
    from worker.engine.jobs.engine import JobEngine


def inpaint_images(
    jobs: JobEngine, canvas: Canvas, additional_prompt: str, runs: Iterator[ImageRun]
) -> Iterator[GeneratedImage]:
    """One inpainted (or outpainted) image per run."""
    for run in runs:
        advanced = run.params.advanced_params
        # Outpaint always repaints fully and the whole canvas (Fooocus forces strength and field to 1).
        strength = 1.0 if canvas.outpainted else advanced.inpaint_strength
        field = 1.0 if canvas.outpainted else advanced.inpaint_respective_field
        prompt = inpaint_prompt(run.params, additional_prompt)
        out = inpaint_one(jobs, run, canvas.image, canvas.mask, strength, prompt, field)
        yield jobs.generated(run, out)


def inpaint_one(
    jobs: JobEngine,
    run: ImageRun,
    image: Image.Image,
    mask: np.ndarray,
    strength: float,
    prompt: str,
    field: float = 1.0,
) -> Image.Image:
    """`image` repainted where `mask` is set, at `strength`, diffusing the crop box of `field`; pixels
    outside the mask are kept exactly."""
    schedule = denoise_schedule(run.params.steps, strength)
    if schedule is None:
        return image
    total, strength = schedule
    top, bottom, left, right = crop_box(mask, field)
    crop = image.convert("RGB").crop((left, top, right, bottom))
    native = jobs.limits.min_ceil
    work = crop if shape_ceil(*crop.size) >= native else jobs.super_resolve(crop)
    work = fit_to_latents(set_shape_ceil(work, native))
    work_mask = binary_mask(mask_image(mask[top:bottom, left:right]), work.size)
    if strength > 0.99:
        work = fill_for_inpaint(work, work_mask)
    out = jobs.diffuse(
        INPAINT,
        run,
        prompt=prompt,
        image=work,
        mask_image=mask_image(work_mask),
        width=work.width,
        height=work.height,
        strength=strength,
        num_inference_steps=total,
    )
    canvas = image.convert("RGB").copy()
    canvas.paste(out.convert("RGB").resize(crop.size, Image.Resampling.LANCZOS), (left, top))
    return paste_outside_mask(image, canvas, mask)
