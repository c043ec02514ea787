"""ImagePrompt and FaceSwap: IP-Adapter Plus (ViT-H) through diffusers' `load_ip_adapter`, from local files.

Straightforward diffusers semantics for now (fooocus-engine.md §7 lists the differences from Fooocus:
separate attention instead of concatenated k/v, a zero-image negative, no face crop).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

from worker.engine.folders import ModelFolders

IP_ADAPTER_FILES = {
    "ImagePrompt": "ip-adapter-plus_sdxl_vit-h.bin",
    "FaceSwap": "ip-adapter-plus-face_sdxl_vit-h.bin",
}
CLIP_VISION_FILE = "clip_vision_vit_h.safetensors"
CONFIG_SUFFIX = ".config"  # an optional sidecar folder with `config.json` (tests' tiny encoder uses one)

# OpenCLIP ViT-H/14's vision tower, as transformers names it.
VIT_H = CLIPVisionConfig(
    hidden_size=1280,
    intermediate_size=5120,
    num_hidden_layers=32,
    num_attention_heads=16,
    patch_size=14,
    image_size=224,
    projection_dim=1024,
    hidden_act="gelu",
)


def required_files(folders: ModelFolders, cn_types: Sequence[str]) -> list[Path]:
    adapters = [folders.folder("controlnet") / IP_ADAPTER_FILES[t] for t in dict.fromkeys(cn_types)]
    return [*adapters, folders.folder("clip_vision") / CLIP_VISION_FILE]


def load_image_encoder(path: Path, device: torch.device, dtype: torch.dtype) -> CLIPVisionModelWithProjection:
    sidecar = path.with_name(path.stem + CONFIG_SUFFIX) / "config.json"
    config = CLIPVisionConfig(**json.loads(sidecar.read_text())) if sidecar.is_file() else VIT_H
    encoder = CLIPVisionModelWithProjection(config)
    state = load_file(str(path))
    missing, _unexpected = encoder.load_state_dict(state, strict=False)
    if missing:
        raise ValueError(f"`{path.name}` is not a CLIP ViT-H vision model: {len(missing)} weights missing")
    return encoder.to(device=device, dtype=dtype).eval()


def attach(
    pipeline: Any,
    folders: ModelFolders,
    slots: Sequence[tuple[str, float]],
    device: torch.device,
    dtype: torch.dtype,
) -> None:
    """Load one adapter per slot `(cn_type, weight)` onto `pipeline`; undo with `detach`."""
    folders.require("an image prompt (IP-Adapter)", *required_files(folders, [t for t, _ in slots]))
    encoder = load_image_encoder(folders.folder("clip_vision") / CLIP_VISION_FILE, device, dtype)
    side = encoder.config.image_size
    # Registered as components, so the pipeline's `encode_image` finds them.
    pipeline.register_modules(
        image_encoder=encoder,
        feature_extractor=CLIPImageProcessor(
            size={"shortest_edge": side}, crop_size={"height": side, "width": side}
        ),
    )
    names = [IP_ADAPTER_FILES[cn_type] for cn_type, _ in slots]
    pipeline.load_ip_adapter(
        str(folders.folder("controlnet")),
        subfolder=[""] * len(names),
        weight_name=names,
        image_encoder_folder=None,
        local_files_only=True,
    )
    # The adapter's layers arrive in the file's dtype; the UNet they join runs in the engine's.
    pipeline.unet.to(device=device, dtype=dtype)
    pipeline.set_ip_adapter_scale([weight for _, weight in slots])


def detach(pipeline: Any, device: torch.device, dtype: torch.dtype) -> None:
    """Restore the shared UNet's attention processors: the next job must not see the adapters."""
    if getattr(pipeline.unet, "encoder_hid_proj", None) is not None:
        pipeline.unload_ip_adapter()
    pipeline.register_modules(image_encoder=None, feature_extractor=None)
    pipeline.unet.to(device=device, dtype=dtype)
