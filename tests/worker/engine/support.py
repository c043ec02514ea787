"""Helpers shared by the engine tests."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from contracts.params import AdvancedParams, GenerationParams


def make_params(steps: int = 3, size: str = "64*64", **fields: object) -> GenerationParams:
    """Small, fast generation parameters; fields of `AdvancedParams` go to advanced_params."""
    advanced = {key: fields.pop(key) for key in list(fields) if key in AdvancedParams.model_fields}
    return GenerationParams(
        prompt=fields.pop("prompt", "a photo of a cat"),
        aspect_ratios_selection=size,
        image_seed=fields.pop("image_seed", 42),
        advanced_params=AdvancedParams(overwrite_step=steps, **advanced),
        **fields,
    )


# Fooocus's guidance switched off: no sharpness, no ADM emphasis (CFG 4 is below adaptive CFG 7).
PLAIN_GUIDANCE: dict[str, object] = {
    "sharpness": 0.0,
    "adm_scaler_positive": 1.0,
    "adm_scaler_negative": 1.0,
    "adm_scaler_end": 0.0,
}


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def png_image(data: bytes) -> Image.Image:
    """Decode PNG bytes, checking the signature first (PIL would also open other formats)."""
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.format == "PNG"
    return image
