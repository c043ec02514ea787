"""Fooocus's VRAM modes for a worker (`FLEET_VRAM`): how much of a checkpoint stays on the GPU.

- `normal`: every model of the pipeline on the GPU (SDXL in float16: about 7 GiB of weights).
- `low`: model CPU offload; one model at a time (text encoders, UNet, VAE) moves to the GPU for
  its forward and stays until the next one runs, so the peak is the UNet's 5 GiB plus activations.
- `very_low`: leaf-level group offload (diffusers' successor to sequential offload); layers move to
  the GPU one by one as they run, the next one's transfer overlapping the current one's work on CUDA
  streams: the least memory, and slower.

Both low modes also decode in tiles and slices (`AutoencoderKL.enable_tiling/slicing`); in `normal`, an
image above `TILE_ABOVE_PIXELS` is decoded in tiles for that image only. `auto` (the default) picks
the mode from the GPU's free memory at start (`choose_vram_mode`); it is `normal` off CUDA, and a low
mode is refused on the CPU, which has nothing to offload to. Offload uses diffusers' hooks, which also
move a model for `vae.decode` and direct calls of a model's forward, and which diffusers' LoRA and
IP-Adapter loaders lift and put back, so the engine's own steps (prompt encoding, guidance, decoding)
work under every mode; the engine creates its tensors on its own device, never on a model's.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

import torch

GIB = 2**30
# Free memory a mode needs with SDXL in float16 at 1024²: all weights (~7 GiB) plus the UNet's and the
# VAE decoder's activations (~3 GiB) for `normal`; the UNet alone plus activations for `low`.
NORMAL_FROM_BYTES = 12 * GIB
LOW_FROM_BYTES = 7 * GIB
# The VAE decoder at 2048² takes about 12 GiB in float16: larger images decode in tiles.
TILE_ABOVE_PIXELS = 1536 * 1536
_OFFLOADED: weakref.WeakSet[torch.nn.Module] = weakref.WeakSet()  # modules `place_module` offloaded


class VramMode(StrEnum):
    NORMAL = "normal"
    LOW = "low"
    VERY_LOW = "very_low"


VRAM_SETTINGS = ("auto", *VramMode)


def choose_vram_mode(setting: str, device: str, free_bytes: int | None) -> VramMode:
    """The mode a worker runs in: the one named, or for `auto` the one the free memory allows.
    ValueError for a low mode on the CPU, which has nothing to offload to."""
    if setting != "auto":
        if setting != VramMode.NORMAL and device == "cpu":
            raise ValueError(
                f"FLEET_VRAM={setting} offloads a GPU's models to the CPU; on the CPU use normal"
            )
        return VramMode(setting)
    if not device.startswith("cuda") or free_bytes is None:
        return VramMode.NORMAL
    if free_bytes >= NORMAL_FROM_BYTES:
        return VramMode.NORMAL
    return VramMode.LOW if free_bytes >= LOW_FROM_BYTES else VramMode.VERY_LOW


def place_pipeline(pipeline: Any, mode: VramMode, device: torch.device, dtype: torch.dtype) -> Any:
    """Cast `pipeline` to `dtype` and put it on `device` the way `mode` says."""
    if mode is VramMode.NORMAL:
        return pipeline.to(device=device, dtype=dtype)
    pipeline.to(dtype=dtype)
    if mode is VramMode.LOW:
        pipeline.enable_model_cpu_offload(device=device)
    else:
        pipeline.enable_group_offload(device, **_leaf_level(device))
    pipeline.vae.enable_tiling()
    pipeline.vae.enable_slicing()
    return pipeline


def _leaf_level(device: torch.device) -> dict[str, Any]:
    # Accelerate's sequential offload would do the same without the overlap, and it breaks on
    # transformers' CLIP parameters.
    return {"offload_type": "leaf_level", "use_stream": device.type == "cuda"}


def place_module(module: Any, mode: VramMode, device: torch.device, dtype: torch.dtype) -> Any:
    """A model the pipeline does not hold (the refiner's UNet): on the device in `normal`; in the low
    modes it stays on the CPU and moves to the device layer by layer as it runs, so it never sits on the
    GPU beside the base UNet (which model offload may still hold there)."""
    if mode is VramMode.NORMAL:
        return module.to(device=device, dtype=dtype)
    from diffusers.hooks import apply_group_offloading

    if module not in _OFFLOADED:  # offloaded once; the library keeps it for later jobs
        apply_group_offloading(module.to(dtype=dtype), onload_device=device, **_leaf_level(device))
        _OFFLOADED.add(module)
    return module


@contextlib.contextmanager
def tiled_when_large(vae: Any, latents: torch.Tensor) -> Iterator[None]:
    """Decode `latents` in tiles when their image is large, unless tiling is on for good."""
    scale = 2 ** (len(vae.config.block_out_channels) - 1)
    pixels = latents.shape[-1] * latents.shape[-2] * scale * scale
    if getattr(vae, "use_tiling", False) or pixels <= TILE_ABOVE_PIXELS:
        yield
        return
    vae.enable_tiling()
    try:
        yield
    finally:
        vae.disable_tiling()
