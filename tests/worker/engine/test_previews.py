from __future__ import annotations

import pytest
import torch

from tests.worker.engine.support import png_image
from worker.engine.previews import (
    PREVIEW_MAX_SIDE,
    SDXL_LATENT_RGB,
    SDXL_LATENT_RGB_BIAS,
    latents_to_image,
    latents_to_png,
    preview_size,
)


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


def test_png_is_valid_and_a_quarter_of_the_images_side_as_in_fooocus_api() -> None:
    image = png_image(latents_to_png(torch.randn(1, 4, 12, 8, dtype=torch.float16)))

    assert image.size == (16, 24)  # a 64×96 image's latents are 8×12
    assert image.mode == "RGB"
    assert preview_size((96, 96)) == (192, 192)  # a 768×768 job


def test_large_images_have_previews_no_longer_than_the_bound() -> None:
    assert preview_size((256, 128)) == (PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE // 2)  # 2048×1024
    assert png_image(latents_to_png(torch.randn(1, 4, 128, 256))).size == (384, 192)


def test_refuses_latents_without_four_channels() -> None:
    with pytest.raises(ValueError, match="latents"):
        latents_to_png(torch.zeros(1, 16, 8, 8))
