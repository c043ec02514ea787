"""Inpaint and outpaint inputs (fooocus-engine.md §6): the canvas, the repaint mask and the prompt."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from worker.engine.images import JobImages, binary_mask, erode_or_dilate, outpaint

if TYPE_CHECKING:
    from contracts.params import GenerationParams


@dataclass(frozen=True)
class Canvas:
    """The image to repaint (padded when outpainted) and its repaint mask (True = repaint)."""

    image: Image.Image
    mask: np.ndarray
    outpainted: bool


def inpaint_canvas(params: GenerationParams, inputs: JobImages) -> Canvas | None:
    """The canvas when the job inpaints or outpaints, else None."""
    spec, advanced = inputs.spec, params.advanced_params
    directions = [d.value for d in spec.outpaint_selections]
    if spec.input_image_key is None or (spec.input_mask_key is None and not directions):
        return None
    image = inputs.image(spec.input_image_key, "an input image").convert("RGB")
    if spec.input_mask_key is not None:
        mask = binary_mask(inputs.image(spec.input_mask_key, "a mask"), image.size)
    else:
        mask = np.zeros((image.height, image.width), dtype=bool)
    mask = erode_or_dilate(mask, advanced.inpaint_erode_or_dilate)
    if advanced.invert_mask_checkbox:
        mask = ~mask
    if directions:
        distances = {
            "Left": spec.outpaint_distance_left,
            "Right": spec.outpaint_distance_right,
            "Top": spec.outpaint_distance_top,
            "Bottom": spec.outpaint_distance_bottom,
        }
        image, mask = outpaint(image, mask, directions, distances)
    if not mask.any():
        return None  # Fooocus inpaints only where the mask has something to repaint
    return Canvas(image, mask, bool(directions))


def inpaint_prompt(params: GenerationParams, additional: str) -> str:
    # Fooocus makes the additional prompt line 0: `additional + "\n" + prompt`.
    if not additional:
        return params.prompt
    return f"{additional}\n{params.prompt}" if params.prompt else additional
