"""Tiny random-weight image-prompt models under Fooocus's file names, for a models folder that already
holds the tiny checkpoint: both IP-Adapters, the CLIP vision encoder, and the PyraCanny and CPDS
ControlNets (full ControlNet state dicts shaped for the tiny UNet)."""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import ControlNetModel, UNet2DConditionModel
from safetensors.torch import save_file

from tests.worker.engine.tiny_ip_adapter import write_tiny_ip_adapter
from worker.engine.controlnet import CONTROLNET_FILES
from worker.engine.ip_adapter import IP_ADAPTER_FILES
from worker.engine.tiny import CONFIG_SUFFIX, TINY_NAME


def write_tiny_controlnet(path: Path, unet: UNet2DConditionModel, seed: int = 5) -> None:
    """A ControlNet of `unet`'s shape whose zero-initialised outputs get small random weights."""
    controlnet = ControlNetModel.from_unet(unet)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # from_unet zero-initialises the outputs: without weights it does nothing
        for name, param in controlnet.named_parameters():
            if name.startswith(
                ("controlnet_down_blocks", "controlnet_mid_block", "controlnet_cond_embedding")
            ):
                param.copy_(torch.randn(param.shape, generator=generator) * 0.05)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(
        {key: value.detach().contiguous().clone() for key, value in controlnet.state_dict().items()}, path
    )


def write_tiny_image_prompt_models(models_dir: Path) -> None:
    """Every image-prompt model file, shaped for `checkpoints/fleet-tiny-sdxl` (its config only is read)."""
    unet_config = models_dir / "checkpoints" / f"{TINY_NAME}{CONFIG_SUFFIX}" / "unet"
    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(unet_config))
    for file_name in CONTROLNET_FILES.values():
        write_tiny_controlnet(models_dir / "controlnet" / file_name, unet)
    for file_name in IP_ADAPTER_FILES.values():
        write_tiny_ip_adapter(models_dir, unet, file_name)
