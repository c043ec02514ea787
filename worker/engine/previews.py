"""Cheap step previews: SDXL latents → a small RGB PNG by a fixed linear map, not a VAE decode.

Decoding through the VAE every step triples a 256 px run on the CPU (environment.md). SDXL's four
latent channels are close to a linear function of colour, so a 4×3 matrix plus a bias gives a
recognisable preview for the cost of one small matmul. The PNG is scaled to a quarter of the image's
side, as Fooocus-API's previews are (192×192 for a 768×768 job), with the long side at most
`PREVIEW_MAX_SIDE` so that progress events stay small whatever the size.
"""

from __future__ import annotations

import io

import torch
from PIL import Image

# Least-squares fit of RGB on SDXL latents (the widely used ComfyUI values): rows are latent channels,
# columns R, G, B. Applied to latents in the UNet's (scaled) space, output roughly in [-1, 1].
SDXL_LATENT_RGB = torch.tensor(
    [
        [0.3651, 0.4232, 0.4341],
        [-0.2533, -0.0042, 0.1068],
        [0.1076, 0.1111, -0.0362],
        [-0.3165, -0.2492, -0.2188],
    ]
)
SDXL_LATENT_RGB_BIAS = torch.tensor([0.1084, -0.0175, -0.0011])
LATENT_TO_PREVIEW = 2  # latents are 1/8 of the image's side, previews 1/4
PREVIEW_MAX_SIDE = 384


def latents_to_image(latents: torch.Tensor) -> Image.Image:
    """The first latent of a `(B, 4, h, w)` or `(4, h, w)` tensor as an `h×w` RGB image."""
    latent = latents[0] if latents.ndim == 4 else latents
    if latent.ndim != 3 or latent.shape[0] != SDXL_LATENT_RGB.shape[0]:
        raise ValueError(f"`latents` must have 4 channels, got shape {tuple(latents.shape)}")
    # Float32 on the CPU: the preview runs off the diffusion's device and dtype (fp16 has no CPU matmul).
    latent = latent.detach().to("cpu", torch.float32)
    rgb = torch.einsum("chw,cr->hwr", latent, SDXL_LATENT_RGB) + SDXL_LATENT_RGB_BIAS
    pixels = ((rgb + 1.0) * 127.5).clamp(0, 255).round().to(torch.uint8)
    return Image.fromarray(pixels.numpy())  # (h, w, 3) uint8 is RGB


def preview_size(latent_size: tuple[int, int]) -> tuple[int, int]:
    """(width, height) of the preview of latents `latent_size` wide and high: W/4 × H/4, bounded."""
    width, height = (side * LATENT_TO_PREVIEW for side in latent_size)
    scale = min(1.0, PREVIEW_MAX_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def latents_to_png(latents: torch.Tensor) -> bytes:
    """PNG bytes of the preview (fast compression: previews are thrown away)."""
    image = latents_to_image(latents)
    buffer = io.BytesIO()
    image.resize(preview_size(image.size), Image.Resampling.BILINEAR).save(
        buffer, format="PNG", compress_level=1
    )
    return buffer.getvalue()
