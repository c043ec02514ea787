"""The original-layout writer, checked against diffusers' own single-file readers.

The full-size check runs on meta tensors (no memory): our renaming of a real SDXL base built from the
shipped configs must be exactly what diffusers' converters turn back into those models.
"""

from __future__ import annotations

import json

import pytest
import torch
from accelerate import init_empty_weights
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.loaders import single_file_utils
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from worker.engine.configs import SDXL_BASE
from worker.engine.sgm_layout import open_clip_to_sgm, sdxl_to_sgm, unet_to_sgm, vae_to_ldm


@pytest.fixture(scope="module")
def sdxl_base_on_meta() -> dict[str, torch.nn.Module]:
    def config(name: str) -> dict[str, object]:
        return json.loads((SDXL_BASE / name / "config.json").read_text())

    with init_empty_weights():
        return {
            "unet": UNet2DConditionModel.from_config(config("unet")),
            "vae": AutoencoderKL.from_config(config("vae")),
            "text_encoder": CLIPTextModel(CLIPTextConfig.from_dict(config("text_encoder"))),
            "text_encoder_2": CLIPTextModelWithProjection(CLIPTextConfig.from_dict(config("text_encoder_2"))),
        }


def _same_layout(converted: dict[str, torch.Tensor], module: torch.nn.Module) -> None:
    expected = module.state_dict()
    assert sorted(converted) == sorted(expected)
    assert {k: tuple(v.shape) for k, v in converted.items()} == {
        k: tuple(v.shape) for k, v in expected.items()
    }


def test_shipped_configs_are_sdxl_base_sized(sdxl_base_on_meta: dict[str, torch.nn.Module]) -> None:
    counts = {name: sum(p.numel() for p in model.parameters()) for name, model in sdxl_base_on_meta.items()}

    # The published parameter counts of stabilityai/stable-diffusion-xl-base-1.0.
    assert counts == {
        "unet": 2_567_463_684,
        "vae": 83_653_863,
        "text_encoder": 123_060_480,
        "text_encoder_2": 694_659_840,
    }


def test_full_size_layout_round_trips_through_diffusers(
    sdxl_base_on_meta: dict[str, torch.nn.Module],
) -> None:
    models = sdxl_base_on_meta
    checkpoint = sdxl_to_sgm(**models)

    assert single_file_utils.infer_diffusers_model_type(checkpoint) == "xl_base"
    # A few names every real SDXL base file has.
    assert checkpoint["model.diffusion_model.output_blocks.2.2.conv.weight"].shape == (1280, 1280, 3, 3)
    assert checkpoint["model.diffusion_model.label_emb.0.0.weight"].shape == (1280, 2816)
    assert checkpoint["first_stage_model.encoder.mid.attn_1.q.weight"].shape == (512, 512, 1, 1)
    assert checkpoint["conditioner.embedders.1.model.transformer.resblocks.31.attn.in_proj_weight"].shape == (
        3840,
        1280,
    )
    assert "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight" in checkpoint

    unet, vae = models["unet"], models["vae"]
    _same_layout(single_file_utils.convert_ldm_unet_checkpoint(checkpoint, unet.config), unet)
    _same_layout(single_file_utils.convert_ldm_vae_checkpoint(checkpoint, vae.config), vae)
    clip_l = single_file_utils.convert_ldm_clip_checkpoint(checkpoint)
    _same_layout({k.removeprefix("text_model."): v for k, v in clip_l.items()}, models["text_encoder"])
    open_clip = single_file_utils.convert_open_clip_checkpoint(
        models["text_encoder_2"], checkpoint, prefix="conditioner.embedders.1.model."
    )
    _same_layout(open_clip, models["text_encoder_2"])


def test_open_clip_fuses_qkv_and_transposes_the_projection() -> None:
    q, k, v = torch.full((4, 4), 1.0), torch.full((4, 4), 2.0), torch.full((4, 4), 3.0)
    projection = torch.arange(8.0).reshape(2, 4)  # linear weight (out=2, in=4)

    out = open_clip_to_sgm(
        {
            "text_model.encoder.layers.0.self_attn.q_proj.weight": q,
            "text_model.encoder.layers.0.self_attn.k_proj.weight": k,
            "text_model.encoder.layers.0.self_attn.v_proj.weight": v,
            "text_projection.weight": projection,
        }
    )

    fused = out["conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight"]
    assert torch.equal(fused, torch.cat([q, k, v]))
    assert torch.equal(out["conditioner.embedders.1.model.text_projection"], projection.T)


def test_unknown_parameters_are_refused() -> None:
    with pytest.raises(KeyError, match="mystery"):
        unet_to_sgm({"mystery.weight": torch.zeros(1)}, layers_per_block=2)
    with pytest.raises(KeyError, match="mystery"):
        vae_to_ldm({"encoder.mystery.weight": torch.zeros(1)}, num_levels=4)
