"""Pixel work around the diffusion: sizes, masks, outpaint canvases and pasting back. Pure PIL/numpy."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

if TYPE_CHECKING:
    from contracts.inputs import ImageInputs

LATENT_FACTOR = 8
SHAPE_STEP = 64  # Fooocus sizes its diffusion inputs in multiples of 64
OUTPAINT_FRACTION = 0.3  # Fooocus pads each chosen side by 30% of H (top/bottom) or W (left/right)


@dataclass(frozen=True)
class JobImages:
    """A job's `ImageInputs` with the images it names, already read from storage."""

    spec: ImageInputs
    images: dict[str, Image.Image] = field(default_factory=dict)

    def image(self, key: str | None, what: str) -> Image.Image:
        if key is None or key not in self.images:
            raise ValueError(f"this job needs {what}, and none was given")
        return self.images[key]


def round_to(value: float, factor: int = LATENT_FACTOR) -> int:
    """Nearest positive multiple of `factor`: the VAE halves the size three times."""
    return max(factor, round(value / factor) * factor)


def fit_to_latents(image: Image.Image, size: tuple[int, int] | None = None) -> Image.Image:
    """`image` resized (Lanczos) to `size`, or to its own size rounded to multiples of 8."""
    width, height = size or image.size
    target = (round_to(width), round_to(height))
    return image if image.size == target else image.resize(target, Image.Resampling.LANCZOS)


def shape_ceil(width: float, height: float) -> int:
    """Fooocus's `get_shape_ceil`: sqrt of the area, rounded up to a multiple of 64."""
    return math.ceil(math.sqrt(width * height) / SHAPE_STEP) * SHAPE_STEP


def shape_for_ceil(width: int, height: int, ceil: int) -> tuple[int, int]:
    """The size Fooocus's `set_image_shape_ceil` picks: scaled until its shape ceil is `ceil`, sides
    rounded to multiples of 64 on the way; the size itself when its ceil is `ceil` already."""
    w, h = width, height
    for _ in range(256):  # converges in a few rounds; Fooocus caps it the same way
        current = shape_ceil(w, h)
        if current == ceil:
            break
        k = ceil / current
        w = max(SHAPE_STEP, round(w * k / SHAPE_STEP) * SHAPE_STEP)
        h = max(SHAPE_STEP, round(h * k / SHAPE_STEP) * SHAPE_STEP)
    return w, h


def set_shape_ceil(image: Image.Image, ceil: int) -> Image.Image:
    """`image` Lanczos-resized to `shape_for_ceil`, or `image` itself when that is its size."""
    size = shape_for_ceil(image.width, image.height, ceil)
    return image if size == image.size else image.resize(size, Image.Resampling.LANCZOS)


def binary_mask(mask: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """A user mask → bool array of `size` (W, H), True = repaint (white > 127).

    An RGBA mask counts where it is both bright and opaque (transparent brush strokes are no mask); a
    mask of another size is resized instead of failing as Fooocus does.
    """
    if mask.mode in ("RGBA", "LA"):
        alpha = np.asarray(mask.getchannel("A"), dtype=np.float32)
        grey = np.asarray(mask.convert("L"), dtype=np.float32) * (alpha / 255.0)
        mask = Image.fromarray(grey.astype(np.uint8), "L")
    else:
        # Fooocus averages the RGB channels, which `convert("L")`'s weighted mean approximates.
        mask = mask.convert("L")
    if mask.size != size:
        mask = mask.resize(size, Image.Resampling.LANCZOS)
    return np.asarray(mask) > 127


def erode_or_dilate(mask: np.ndarray, amount: int) -> np.ndarray:
    """`|amount|` passes of a 3×3 max (dilate, amount > 0) or min (erode, amount < 0) filter."""
    if amount == 0:
        return mask
    tensor = torch.from_numpy(mask.astype(np.float32))[None, None]
    for _ in range(abs(amount)):
        if amount > 0:
            tensor = F.max_pool2d(tensor, 3, stride=1, padding=1)
        else:
            tensor = -F.max_pool2d(-tensor, 3, stride=1, padding=1)
    return tensor[0, 0].numpy() > 0.5


def outpaint(
    image: Image.Image,
    mask: np.ndarray,
    directions: Iterable[str],
    distances: dict[str, int],
) -> tuple[Image.Image, np.ndarray]:
    """Pad the canvas on each chosen side (edge pixels repeated, as Fooocus's `np.pad(mode='edge')`).

    A distance ≤ 0 means Fooocus's automatic 30%: of the original H for top/bottom, then of the
    width after that padding for left/right. The padded area joins the mask.
    """
    chosen = set(directions)
    pixels = np.asarray(image.convert("RGB"))
    height, width = pixels.shape[:2]

    def pad(side: str, base: int) -> int:
        if side not in chosen:
            return 0
        given = distances.get(side, -1)
        return given if given > 0 else int(base * OUTPAINT_FRACTION)

    top, bottom = pad("Top", height), pad("Bottom", height)
    left, right = pad("Left", width), pad("Right", width)
    pixels = np.pad(pixels, ((top, bottom), (left, right), (0, 0)), mode="edge")
    mask = np.pad(mask, ((top, bottom), (left, right)), mode="constant", constant_values=True)
    return Image.fromarray(pixels), mask


def mask_image(mask: np.ndarray) -> Image.Image:
    return Image.fromarray(mask.astype(np.uint8) * 255, "L")


def paste_outside_mask(original: Image.Image, generated: Image.Image, mask: np.ndarray) -> Image.Image:
    """Keep `original` exactly where the mask is off: the VAE round trip changes every pixel."""
    generated = generated.convert("RGB")
    if generated.size != original.size:
        generated = generated.resize(original.size, Image.Resampling.LANCZOS)
    keep = np.asarray(original.convert("RGB"))
    out = np.where(mask[..., None], np.asarray(generated), keep)
    return Image.fromarray(out.astype(np.uint8))


def fill_for_inpaint(image: Image.Image, mask: np.ndarray) -> Image.Image:
    """Masked pixels replaced by blurred colours of their surroundings (a coarse `fooocus_fill`).

    Why: a strength below 1 starts from this image, and a hole of edge-repeated pixels or black
    would show through.
    """
    pixels = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32)).permute(2, 0, 1)[None]
    hole = torch.from_numpy(mask)[None, None]
    work = pixels.clone()
    for radius, passes in ((64, 2), (16, 4), (4, 4), (1, 8)):
        size = 2 * radius + 1
        for _ in range(passes):
            blurred = F.avg_pool2d(work, size, stride=1, padding=radius, count_include_pad=False)
            work = torch.where(hole, blurred, pixels)
    out = work[0].permute(1, 2, 0).clamp(0, 255).numpy().astype(np.uint8)
    return Image.fromarray(out)
