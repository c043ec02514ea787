"""Inpaint and outpaint inputs (fooocus-engine.md §6): the canvas, the repaint mask, the crop box
around the mask and the prompt."""

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


# Fooocus's crop is a square around the mask's bounding box, this much larger (`compute_initial_abcd`).
CROP_MARGIN = 1.15


def crop_box(mask: np.ndarray, field: float) -> tuple[int, int, int, int]:
    """The area Fooocus diffuses, as (top, bottom, left, right), bottom and right exclusive.

    A square around the mask's bounding box, 15% larger, clipped to the image, then grown one pixel per
    side (on its shorter dimension first) until it spans `field` (Fooocus's respective field) of the
    image's height and of its width. `field` 1 is the whole image.
    """
    height, width = mask.shape
    if field >= 1.0 or not mask.any():
        return 0, height, 0, width
    rows, cols = np.nonzero(mask)
    row_mid, row_half = (rows.min() + rows.max()) // 2, (rows.max() - rows.min()) // 2
    col_mid, col_half = (cols.min() + cols.max()) // 2, (cols.max() - cols.min()) // 2
    half = int(max(row_half, col_half) * CROP_MARGIN)

    def clip(value: int, limit: int) -> int:
        return int(min(max(value, 0), limit))

    top, bottom = clip(row_mid - half, height), clip(row_mid + half + 1, height)
    left, right = clip(col_mid - half, width), clip(col_mid + half + 1, width)
    while bottom - top < height * field or right - left < width * field:
        rows_full, cols_full = bottom - top == height, right - left == width
        grow_rows = cols_full or (not rows_full and bottom - top < right - left)
        if grow_rows:
            top, bottom = clip(top - 1, height), clip(bottom + 1, height)
        else:
            left, right = clip(left - 1, width), clip(right + 1, width)
    return top, bottom, left, right
