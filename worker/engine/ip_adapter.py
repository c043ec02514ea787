"""ImagePrompt and FaceSwap: IP-Adapter Plus (ViT-H) through diffusers' `load_ip_adapter`, from local files.

Straightforward diffusers semantics for now (fooocus-engine.md §7 lists the differences from Fooocus:
separate attention instead of concatenated k/v, a zero-image negative, no face crop).

The CLIP ViT-H encoder (about 1.3 GB in float16) and the adapters' weights are read from disk once and
kept in `IpWeights` beside the checkpoint they serve, like the ControlNets; a replaced file is read
again, and releasing the checkpoint's engine drops them.
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


FileKey = tuple[Path, float]


def _key(path: Path) -> FileKey:
    return path, path.stat().st_mtime


class IpWeights:
    """The image encoder and the adapters' state dicts, each read from disk once (per file version)."""

    def __init__(self) -> None:
        self._encoder: tuple[FileKey, CLIPVisionModelWithProjection] | None = None
        self._adapters: dict[FileKey, dict[str, Any]] = {}
        self.reads = 0  # files read from disk

    def encoder(self, path: Path, device: torch.device, dtype: torch.dtype) -> CLIPVisionModelWithProjection:
        key = _key(path)
        if self._encoder is None or self._encoder[0] != key:
            self._encoder = key, load_image_encoder(path, device, dtype)
            self.reads += 1
        return self._encoder[1]

    def adapter(self, path: Path) -> dict[str, Any]:
        key = _key(path)
        if key not in self._adapters:
            self._adapters = {k: v for k, v in self._adapters.items() if k[0] != path}  # an older version
            self._adapters[key] = torch.load(path, map_location="cpu", weights_only=True)
            self.reads += 1
        return self._adapters[key]

    def release(self) -> None:
        self._encoder = None
        self._adapters.clear()


def attach(
    pipeline: Any,
    folders: ModelFolders,
    slots: Sequence[tuple[str, float]],
    device: torch.device,
    dtype: torch.dtype,
    weights: IpWeights,
) -> None:
    """Load one adapter per slot `(cn_type, weight)` onto `pipeline`; undo with `detach`."""
    folders.require("an image prompt (IP-Adapter)", *required_files(folders, [t for t, _ in slots]))
    encoder = weights.encoder(folders.folder("clip_vision") / CLIP_VISION_FILE, device, dtype)
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
        [weights.adapter(folders.folder("controlnet") / name) for name in names],
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
