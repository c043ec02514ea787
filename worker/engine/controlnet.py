"""PyraCanny and CPDS as ControlNets built on the loaded base UNet (fooocus-engine.md §7).

Fooocus ships both as rank-128 control-LoRAs; they are applied on a copy of the current base UNet
(`ControlNetModel.from_unet`), as ComfyUI's ControlLora does. A file holding a full ControlNet state
dict (diffusers layout) loads too.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from diffusers import ControlNetModel, UNet2DConditionModel
from safetensors.torch import load_file

from worker.engine.folders import ModelFolders

log = logging.getLogger(__name__)

CONTROLNET_FILES = {
    "PyraCanny": "control-lora-canny-rank128.safetensors",
    "CPDS": "fooocus_xl_cpds_128.safetensors",
}


def controlnet_path(folders: ModelFolders, cn_type: str) -> Path:
    return folders.folder("controlnet") / CONTROLNET_FILES[cn_type]


def _without_adapters(unet: UNet2DConditionModel) -> UNet2DConditionModel:
    """`unet` itself, or, once LoRA adapters were injected into it (peft wraps each layer as `base_layer`
    plus `lora_*`), a plain copy with its base weights: `from_unet` copies state dicts by plain names."""
    if not getattr(unet, "peft_config", None):
        return unet
    plain = UNet2DConditionModel.from_config(unet.config)
    state = {
        key.replace(".base_layer.", "."): value
        for key, value in unet.state_dict().items()
        if ".lora_" not in key
    }
    plain.load_state_dict(state)
    return plain


def load_controlnet(
    path: Path, unet: UNet2DConditionModel, device: torch.device, dtype: torch.dtype
) -> ControlNetModel:
    """A ControlNet from `path` (control-LoRA or full state dict) on a copy of `unet`."""
    state = load_file(str(path))
    controlnet = ControlNetModel.from_unet(_without_adapters(unet))
    if any("lora_controlnet" in key or "lora" in key for key in state):
        controlnet.load_lora_adapter(state, prefix=None)
    else:
        missing, unexpected = controlnet.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(
                f"`{path.name}` is not a ControlNet for this checkpoint: "
                f"{len(missing)} missing and {len(unexpected)} unexpected weights"
            )
    return controlnet.to(device=device, dtype=dtype).eval()
