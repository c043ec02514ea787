"""A diffusion's latents: the seeded starting noise, each step reported with a preview, the final decode
through the VAE. Functions of a pipeline, shared by the engine and the job kinds built on it."""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from diffusers import StableDiffusionXLPipeline
from PIL import Image

from worker.engine.previews import latents_to_png
from worker.engine.runs import StepCallback, StepInfo
from worker.engine.vram import tiled_when_large


def initial_noise(
    pipeline: Any, seed: int, width: int, height: int, device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Generator]:
    """Unit Gaussian noise from a CPU generator (device-independent); the pipeline scales it by
    the scheduler's `init_noise_sigma`. The same generator then drives the sampler's own noise."""
    generator = torch.Generator("cpu").manual_seed(seed)
    factor = pipeline.vae_scale_factor
    shape = (1, pipeline.unet.config.in_channels, height // factor, width // factor)
    noise = torch.randn(shape, generator=generator, dtype=torch.float32)
    return noise.to(device, dtype), generator


def report_step(
    on_step: StepCallback,
    index: int,
    count: int,
    pipeline: StableDiffusionXLPipeline,
    step_index: int,
    timestep: Any,
    tensors: dict[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """diffusers' `callback_on_step_end`: translate to `StepInfo`; the tensors pass through unchanged."""
    # Schedulers return new tensors each step, so this reference stays the step's latents.
    info = StepInfo(
        index, count, step_index + 1, pipeline.num_timesteps, partial(latents_to_png, tensors["latents"])
    )
    on_step(info)
    return tensors


@torch.no_grad()
def decode_latents(pipeline: Any, latents: torch.Tensor) -> Image.Image:
    """Final latents → PIL image through the VAE, in the VAE's own dtype (the pipeline's own steps)."""
    vae = pipeline.vae
    latents = latents.to(vae.dtype)
    mean, std = vae.config.get("latents_mean"), vae.config.get("latents_std")
    if mean is not None and std is not None:  # e.g. Playground v2.5 normalises its latents
        shape = (1, -1, 1, 1)
        mean_t = torch.tensor(mean).view(shape).to(latents)
        std_t = torch.tensor(std).view(shape).to(latents)
        latents = latents * std_t / vae.config.scaling_factor + mean_t
    else:
        latents = latents / vae.config.scaling_factor
    with tiled_when_large(vae, latents):
        pixels = vae.decode(latents, return_dict=False)[0]
    return pipeline.image_processor.postprocess(pixels, output_type="pil")[0]
