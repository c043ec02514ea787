"""Renaming diffusers state dicts into the original SDXL (Stability "SGM") single-file key layout.

Every SDXL checkpoint people download (Juggernaut, Pony, sd_xl_base_1.0, …) is one `.safetensors` file
in this layout; diffusers' `from_single_file` converts it back. Writing our tiny test model in the same
layout makes the worker load it through the exact code path a real checkpoint takes.

Only text-to-image SDXL base components are covered: UNet, VAE, CLIP-L and OpenCLIP bigG.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_L_PREFIX = "conditioner.embedders.0.transformer.text_model."
OPEN_CLIP_PREFIX = "conditioner.embedders.1.model."

StateDict = Mapping[str, torch.Tensor]

# ResNet parameter names: diffusers → SGM (the same for UNet input, middle and output blocks).
_UNET_RESNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "conv_shortcut": "skip_connection",
}
_UNET_TOP_LEVEL = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "add_embedding.linear_1": "label_emb.0.0",
    "add_embedding.linear_2": "label_emb.0.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}
_VAE_TOP_LEVEL = {"conv_norm_out": "norm_out"}
# VAE mid-block attention: diffusers uses linear layers, the original 1×1 convolutions.
_VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}
_OPEN_CLIP_LAYER = {
    "layer_norm1": "ln_1",
    "layer_norm2": "ln_2",
    "mlp.fc1": "mlp.c_fc",
    "mlp.fc2": "mlp.c_proj",
    "self_attn.out_proj": "attn.out_proj",
}

_DOWN = re.compile(r"down_blocks\.(\d+)\.(resnets|attentions|downsamplers)\.(\d+)\.(.+)")
_UP = re.compile(r"up_blocks\.(\d+)\.(resnets|attentions|upsamplers)\.(\d+)\.(.+)")
_MID = re.compile(r"mid_block\.(resnets|attentions)\.(\d+)\.(.+)")
_CLIP_LAYER = re.compile(r"encoder\.layers\.(\d+)\.(.+)")
_QKV = re.compile(r"self_attn\.([qkv])_proj\.(weight|bias)")


def _split_param(rest: str) -> tuple[str, str]:
    """`"norm1.weight"` → `("norm1", "weight")`."""
    module, _, param = rest.rpartition(".")
    return module, param


def _rename_resnet(rest: str) -> str:
    module, param = _split_param(rest)
    return f"{_UNET_RESNET[module]}.{param}"


def unet_to_sgm(state: StateDict, layers_per_block: int) -> dict[str, torch.Tensor]:
    """Rename an SDXL `UNet2DConditionModel` state dict to `model.diffusion_model.*`.

    The original UNet numbers its blocks flat: `input_blocks` holds conv_in, then per level
    `layers_per_block` (resnet, attention) pairs and a downsampler; `output_blocks` holds
    `layers_per_block + 1` pairs per level, the last one followed by the upsampler.
    """
    per_down, per_up = layers_per_block + 1, layers_per_block + 1
    up_levels_with_attention = {
        int(m.group(1)) for k in state if (m := _UP.match(k)) and m.group(2) == "attentions"
    }
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        module, param = _split_param(key)
        if module in _UNET_TOP_LEVEL:
            new = f"{_UNET_TOP_LEVEL[module]}.{param}"
        elif match := _DOWN.match(key):
            level, kind, index, rest = int(match[1]), match[2], int(match[3]), match[4]
            first = 1 + level * per_down
            if kind == "resnets":
                new = f"input_blocks.{first + index}.0.{_rename_resnet(rest)}"
            elif kind == "attentions":
                new = f"input_blocks.{first + index}.1.{rest}"
            else:  # the downsampler closes the level: `downsamplers.0.conv.*` → `op.*`
                new = f"input_blocks.{first + layers_per_block}.0.op.{rest.removeprefix('conv.')}"
        elif match := _MID.match(key):
            kind, index, rest = match[1], int(match[2]), match[3]
            if kind == "resnets":  # resnet, attention, resnet → middle_block.0, .1, .2
                new = f"middle_block.{2 * index}.{_rename_resnet(rest)}"
            else:
                new = f"middle_block.1.{rest}"
        elif match := _UP.match(key):
            level, kind, index, rest = int(match[1]), match[2], int(match[3]), match[4]
            first = level * per_up
            if kind == "resnets":
                new = f"output_blocks.{first + index}.0.{_rename_resnet(rest)}"
            elif kind == "attentions":
                new = f"output_blocks.{first + index}.1.{rest}"
            else:  # the upsampler sits after the resnet (and the attention, if the level has one)
                slot = 2 if level in up_levels_with_attention else 1
                new = f"output_blocks.{first + layers_per_block}.{slot}.{rest}"
        else:
            raise KeyError(f"no SGM name for UNet parameter {key!r}")
        out[UNET_PREFIX + new] = tensor
    return out


def _rename_vae_mid(side: str, rest: str, tensor: torch.Tensor) -> tuple[str, torch.Tensor]:
    match = _MID.match(rest)
    if match is None:
        raise KeyError(f"no LDM name for VAE parameter {side}.{rest!r}")
    kind, index, param_path = match[1], int(match[2]), match[3]
    if kind == "resnets":
        return f"{side}.mid.block_{index + 1}.{param_path}", tensor
    module, param = _split_param(param_path)
    if module != "group_norm" and param == "weight":
        tensor = tensor.reshape(*tensor.shape, 1, 1)  # linear (C, C) → 1×1 conv (C, C, 1, 1)
    return f"{side}.mid.attn_1.{_VAE_ATTENTION[module]}.{param}", tensor


def vae_to_ldm(state: StateDict, num_levels: int) -> dict[str, torch.Tensor]:
    """Rename an `AutoencoderKL` state dict to `first_stage_model.*` (the LDM autoencoder layout).

    The original decoder numbers its levels from the lowest resolution up (`up.0` is last), the
    diffusers decoder in execution order, so decoder level i becomes `up.{num_levels - 1 - i}`.
    """
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        side, _, rest = key.partition(".")
        module, param = _split_param(rest)
        if side in {"quant_conv", "post_quant_conv"}:
            new, value = key, tensor
        elif module in _VAE_TOP_LEVEL or module in {"conv_in", "conv_out"}:
            new, value = f"{side}.{_VAE_TOP_LEVEL.get(module, module)}.{param}", tensor
        elif rest.startswith("mid_block."):
            new, value = _rename_vae_mid(side, rest, tensor)
        elif match := (_DOWN.match(rest) if side == "encoder" else _UP.match(rest)):
            level, kind, index, tail = int(match[1]), match[2], int(match[3]), match[4]
            if side == "encoder":
                name, sampler = f"down.{level}", "downsample"
            else:
                name, sampler = f"up.{num_levels - 1 - level}", "upsample"
            if kind == "resnets":
                new = f"{side}.{name}.block.{index}.{tail.replace('conv_shortcut', 'nin_shortcut')}"
            else:
                new = f"{side}.{name}.{sampler}.{tail}"
            value = tensor
        else:
            raise KeyError(f"no LDM name for VAE parameter {key!r}")
        out[VAE_PREFIX + new] = value
    return out


def clip_l_to_sgm(state: StateDict) -> dict[str, torch.Tensor]:
    """CLIP-L keeps its transformers names under `conditioner.embedders.0.transformer.text_model.`.

    transformers 5 saves `CLIPTextModel` without the `text_model.` level, older versions with it;
    either way the file must carry it, or diffusers does not recognise the encoder.
    """
    return {CLIP_L_PREFIX + key.removeprefix("text_model."): tensor for key, tensor in state.items()}


def open_clip_to_sgm(state: StateDict) -> dict[str, torch.Tensor]:
    """Rename a `CLIPTextModelWithProjection` state dict to OpenCLIP's layout under `embedders.1.model.`.

    OpenCLIP fuses q, k and v into one `in_proj` (rows in q, k, v order), stores the position
    embedding as a bare tensor, and applies the projection as `x @ text_projection` (the transpose of
    the linear weight).
    """
    out: dict[str, torch.Tensor] = {}
    fused: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in state.items():
        name = key.removeprefix("text_model.")
        if name == "embeddings.token_embedding.weight":
            out["token_embedding.weight"] = tensor
        elif name == "embeddings.position_embedding.weight":
            out["positional_embedding"] = tensor
        elif name.startswith("final_layer_norm."):
            out["ln_final." + name.removeprefix("final_layer_norm.")] = tensor
        elif name == "text_projection.weight":
            out["text_projection"] = tensor.T.contiguous()
        elif match := _CLIP_LAYER.match(name):
            layer, rest = match[1], match[2]
            prefix = f"transformer.resblocks.{layer}."
            if qkv := _QKV.fullmatch(rest):
                fused.setdefault(f"{prefix}attn.in_proj_{qkv[2]}", {})[qkv[1]] = tensor
            else:
                module, param = _split_param(rest)
                out[f"{prefix}{_OPEN_CLIP_LAYER[module]}.{param}"] = tensor
        else:
            raise KeyError(f"no OpenCLIP name for text encoder parameter {key!r}")
    for key, parts in fused.items():
        out[key] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
    return {OPEN_CLIP_PREFIX + key: tensor for key, tensor in out.items()}


def sdxl_to_sgm(
    unet: UNet2DConditionModel,
    vae: AutoencoderKL,
    text_encoder: CLIPTextModel,
    text_encoder_2: CLIPTextModelWithProjection,
) -> dict[str, torch.Tensor]:
    """One single-file state dict for an SDXL base pipeline's four weighted components."""
    return {
        **unet_to_sgm(unet.state_dict(), layers_per_block=unet.config.layers_per_block),
        **vae_to_ldm(vae.state_dict(), num_levels=len(vae.config.block_out_channels)),
        **clip_l_to_sgm(text_encoder.state_dict()),
        **open_clip_to_sgm(text_encoder_2.state_dict()),
    }
