"""Helpers shared by the engine tests."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from contracts.params import AdvancedParams, GenerationParams


def make_params(steps: int = 3, size: str = "64*64", **fields: object) -> GenerationParams:
    """Small, fast generation parameters; `sampler_name`/`scheduler_name` go to advanced_params."""
    advanced = {
        key: fields.pop(key) for key in ("sampler_name", "scheduler_name", "clip_skip") if key in fields
    }
    return GenerationParams(
        prompt=fields.pop("prompt", "a photo of a cat"),
        aspect_ratios_selection=size,
        image_seed=fields.pop("image_seed", 42),
        advanced_params=AdvancedParams(overwrite_step=steps, **advanced),
        **fields,
    )


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def png_image(data: bytes) -> Image.Image:
    """Decode PNG bytes, checking the signature first (PIL would also open other formats)."""
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.format == "PNG"
    return image
