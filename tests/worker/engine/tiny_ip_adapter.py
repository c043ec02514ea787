"""A tiny random IP-Adapter Plus and CLIP vision encoder, in the files and layout Fooocus uses.

The adapter is written in the original IP-Adapter `.bin` layout (`image_proj` Resampler keys with
`to_kv`, `ip_adapter` keys numbered 1, 3, 5, … per cross-attention), which diffusers converts on load.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from diffusers import UNet2DConditionModel
from diffusers.models.embeddings import IPAdapterPlusImageProjection
from safetensors.torch import save_file
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

VISION_WIDTH = 32
_RENAMES = (
    ("ln0.", "0.norm1."),
    ("ln1.", "0.norm2."),
    ("attn.to_q.", "0.to_q."),
    ("attn.to_out.0.", "0.to_out."),
    ("ff.0.", "1.0."),
    ("ff.1.net.0.proj.", "1.1."),
    ("ff.1.net.2.", "1.3."),
)


def _original_resampler(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """diffusers' `IPAdapterPlusImageProjection` names → the IP-Adapter repo's Resampler names."""
    out: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        match = re.match(r"layers\.(\d+)\.(.*)", name)
        if match is None:
            out[name] = tensor
            continue
        layer, rest = match.groups()
        if rest.startswith("attn.to_k."):
            out[f"layers.{layer}.0.to_kv.weight"] = torch.cat([tensor, state[name.replace("to_k", "to_v")]])
            continue
        if rest.startswith("attn.to_v."):
            continue
        old, new = next((old, new) for old, new in _RENAMES if rest.startswith(old))
        out[f"layers.{layer}.{new}{rest[len(old) :]}"] = tensor
    return out


def write_tiny_ip_adapter(models: Path, unet: UNet2DConditionModel, file_name: str) -> None:
    """`controlnet/<file_name>` and `clip_vision/clip_vision_vit_h.safetensors` (+ sidecar config)."""
    generator = torch.Generator().manual_seed(11)
    torch.manual_seed(11)
    cross = unet.config.cross_attention_dim
    projection = IPAdapterPlusImageProjection(
        embed_dims=VISION_WIDTH, output_dims=cross, hidden_dims=64, heads=1, num_queries=4
    )
    widths = unet.config.block_out_channels
    layers: dict[str, torch.Tensor] = {}
    key_id = 1
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        if name.startswith("mid_block"):
            width = widths[-1]
        elif name.startswith("up_blocks"):
            width = list(reversed(widths))[int(name[len("up_blocks.")])]
        else:
            width = widths[int(name[len("down_blocks.")])]
        layers[f"{key_id}.to_k_ip.weight"] = torch.randn(width, cross, generator=generator)
        layers[f"{key_id}.to_v_ip.weight"] = torch.randn(width, cross, generator=generator)
        key_id += 2
    (models / "controlnet").mkdir(parents=True, exist_ok=True)
    adapter = {"image_proj": _original_resampler(projection.state_dict()), "ip_adapter": layers}
    torch.save(adapter, models / "controlnet" / file_name)

    config = CLIPVisionConfig(
        hidden_size=VISION_WIDTH,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=32,
        patch_size=8,
        projection_dim=16,
    )
    clip_vision = models / "clip_vision"
    clip_vision.mkdir(exist_ok=True)
    encoder = CLIPVisionModelWithProjection(config)
    save_file(
        {key: value.contiguous() for key, value in encoder.state_dict().items()},
        clip_vision / "clip_vision_vit_h.safetensors",
    )
    config.save_pretrained(clip_vision / "clip_vision_vit_h.config")
