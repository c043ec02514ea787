"""Inpaint and outpaint (fooocus-engine.md §6): repaint the masked area, keep every other pixel."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from PIL import Image

from worker.engine.images import fill_for_inpaint, fit_to_latents, mask_image, paste_outside_mask
from worker.engine.img2img import denoise_schedule
from worker.engine.inpaint import Canvas, inpaint_prompt
from worker.engine.jobs.diffusion import INPAINT, Diffuser, ImageRun
from worker.engine.sdxl import GeneratedImage


def inpaint_images(
    diffuser: Diffuser, canvas: Canvas, additional_prompt: str, runs: Iterator[ImageRun]
) -> Iterator[GeneratedImage]:
    """One inpainted (or outpainted) image per run."""
    for run in runs:
        # Outpaint always repaints fully (Fooocus forces strength 1.0).
        strength = 1.0 if canvas.outpainted else run.params.advanced_params.inpaint_strength
        prompt = inpaint_prompt(run.params, additional_prompt)
        out = inpaint_one(diffuser, run, canvas.image, canvas.mask, strength, prompt)
        yield GeneratedImage(run.index, run.seed, out)


def inpaint_one(
    diffuser: Diffuser, run: ImageRun, image: Image.Image, mask: np.ndarray, strength: float, prompt: str
) -> Image.Image:
    """`image` repainted where `mask` is set, at `strength`; pixels outside the mask are kept exactly."""
    schedule = denoise_schedule(run.params.steps, strength)
    if schedule is None:
        return image
    total, strength = schedule
    work = fit_to_latents(fill_for_inpaint(image, mask) if strength > 0.99 else image)
    work_mask = mask_image(mask).resize(work.size, Image.Resampling.NEAREST)
    out = diffuser.diffuse(
        INPAINT,
        run,
        prompt=prompt,
        image=work,
        mask_image=work_mask,
        width=work.width,
        height=work.height,
        strength=strength,
        num_inference_steps=total,
    )
    return paste_outside_mask(image, out, mask)
