"""Upscale or vary (fooocus-engine.md §5): Fooocus's denoise per method, its image sizes, and their
diffusers translation.

Fooocus's shape ceilings (1024 and 2048 for vary, 1024 and 2800 for upscale) are SDXL's native side
and multiples of it; `ShapeLimits` scales them to the loaded checkpoint's native side, so they are
Fooocus's exactly on SDXL and proportionally smaller on the tiny test model (64 px).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

from worker.engine.images import fit_to_latents, set_shape_ceil, shape_ceil

# Fooocus's denoise per method (fooocus-engine.md §5).
VARY_DENOISE = {"Vary (Subtle)": 0.5, "Vary (Strong)": 0.85}
UPSCALE_DENOISE = 0.382
UPSCALE_FACTORS = {"Upscale (1.5x)": 1.5, "Upscale (2x)": 2.0, "Upscale (Fast 2x)": 2.0}
FAST_2X = "Upscale (Fast 2x)"
SDXL_SIDE = 1024

SuperResolve = Callable[[Image.Image], Image.Image]


@dataclass(frozen=True)
class ShapeLimits:
    """Fooocus's shape ceilings for a checkpoint trained at `native` px (SDXL: 1024)."""

    native: int = SDXL_SIDE

    @property
    def min_ceil(self) -> int:
        return self.native

    @property
    def max_vary_ceil(self) -> int:
        return 2 * self.native

    @property
    def direct_sr_ceil(self) -> int:
        # Above 2800 on SDXL, Fooocus returns the upscaled image without diffusion.
        return self.native * 2800 // SDXL_SIDE


def denoise_schedule(steps: int, denoise: float) -> tuple[int, float] | None:
    """Fooocus's ComfyUI-style denoise in diffusers terms: run `steps` of `int(steps / denoise)`.

    Returns `(num_inference_steps, strength)`, or None when nothing is to be denoised.
    """
    if denoise <= 0:
        return None
    total = max(steps, int(steps / denoise))
    # diffusers runs int(total * strength) steps; the half step keeps float error from losing one.
    return total, min(1.0, (steps + 0.5) / total)


def upscale_factor(method: str, value: float | None) -> float:
    if method == "Upscale (Custom)":
        return value if value is not None and 0 < value < 5 else 2.0
    return UPSCALE_FACTORS[method]


def vary_source(image: Image.Image, limits: ShapeLimits) -> Image.Image:
    """Vary's start image: its shape ceil clamped to [native, 2·native] (`set_image_shape_ceil`)."""
    ceil = min(max(shape_ceil(*image.size), limits.min_ceil), limits.max_vary_ceil)
    return fit_to_latents(set_shape_ceil(image.convert("RGB"), ceil))


def upscale_source(
    image: Image.Image, factor: float, limits: ShapeLimits, super_resolve: SuperResolve
) -> tuple[Image.Image, int]:
    """The upscaled image and its shape ceil, as Fooocus's `apply_upscale`.

    The super-resolution model runs first; then the result is Lanczos-resized to the input size times
    `factor`, or, when that is below the native ceil, to the native ceil in multiples of 64.
    """
    width, height = image.size
    ceil = shape_ceil(width * factor, height * factor)
    upscaled = super_resolve(image.convert("RGB"))
    if ceil < limits.min_ceil:
        return set_shape_ceil(upscaled, limits.min_ceil), limits.min_ceil
    target = (int(width * factor), int(height * factor))
    if upscaled.size != target:
        upscaled = upscaled.resize(target, Image.Resampling.LANCZOS)
    return upscaled, ceil


def uov_source(
    image: Image.Image,
    method: str,
    upscale_value: float | None,
    limits: ShapeLimits,
    super_resolve: SuperResolve,
) -> tuple[Image.Image, bool]:
    """The image img2img starts from, and whether it is the result as it is (no diffusion)."""
    if method.startswith("Vary"):
        return vary_source(image, limits), False
    upscaled, ceil = upscale_source(image, upscale_factor(method, upscale_value), limits, super_resolve)
    if method == FAST_2X or ceil > limits.direct_sr_ceil:
        return upscaled, True
    return fit_to_latents(upscaled), False
