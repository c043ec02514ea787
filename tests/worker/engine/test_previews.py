from __future__ import annotations

import pytest
import torch

from tests.worker.engine.support import png_image
from worker.engine.previews import SDXL_LATENT_RGB, SDXL_LATENT_RGB_BIAS, latents_to_image, latents_to_png


def test_zero_latents_show_the_bias_colour() -> None:
    image = latents_to_image(torch.zeros(1, 4, 2, 3))

    expected = tuple(round((b + 1) * 127.5) for b in SDXL_LATENT_RGB_BIAS.tolist())
    assert image.size == (3, 2)  # (width, height) of the latent
    assert image.getpixel((0, 0)) == expected


def test_each_channel_maps_through_its_row_and_clamps() -> None:
    latents = torch.zeros(4, 1, 2)
    latents[0, 0, 0] = 1.0  # first pixel: channel 0 only
    latents[0, 0, 1] = 100.0  # second pixel: far out of range

    image = latents_to_image(latents)

    rgb = (SDXL_LATENT_RGB[0] + SDXL_LATENT_RGB_BIAS).tolist()
    assert image.getpixel((0, 0)) == tuple(round((c + 1) * 127.5) for c in rgb)
    assert image.getpixel((1, 0)) == (255, 255, 255)


def test_png_is_valid_and_the_size_of_the_latent() -> None:
    image = png_image(latents_to_png(torch.randn(1, 4, 12, 8, dtype=torch.float16)))

    assert image.size == (8, 12)
    assert image.mode == "RGB"


def test_refuses_latents_without_four_channels() -> None:
    with pytest.raises(ValueError, match="latents"):
        latents_to_png(torch.zeros(1, 16, 8, 8))
