"""Tiny LoRA files for the tiny SDXL, written the way diffusers saves a trained SDXL LoRA."""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import StableDiffusionXLPipeline
from peft import LoraConfig, inject_adapter_in_model
from peft.utils import get_peft_model_state_dict

from worker.engine.tiny import build_tiny_pipeline

UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
TEXT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]


def write_tiny_lora(path: Path, cache_dir: Path, *, seed: int, text_encoders: bool = True) -> Path:
    """A rank-4 LoRA on the tiny model's attention (and text encoders), random non-zero weights."""
    pipeline = build_tiny_pipeline(cache_dir)
    torch.manual_seed(seed)
    layers: dict[str, dict[str, torch.Tensor]] = {}
    targets_of = {"unet": UNET_TARGETS, "text_encoder": TEXT_TARGETS, "text_encoder_2": TEXT_TARGETS}
    for component, targets in targets_of.items():
        if component != "unet" and not text_encoders:
            continue
        config = LoraConfig(r=4, lora_alpha=4, target_modules=targets, init_lora_weights="gaussian")
        # peft directly: transformers' own `add_adapter` wants a newer peft than diffusers does
        model = inject_adapter_in_model(config, getattr(pipeline, component))
        with torch.no_grad():  # peft starts lora_B at zero (a no-op LoRA): give it weights that matter
            for name, parameter in model.named_parameters():
                if "lora_B" in name:
                    parameter.normal_(0.0, 0.5)
        layers[component] = get_peft_model_state_dict(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    StableDiffusionXLPipeline.save_lora_weights(
        path.parent,
        unet_lora_layers=layers["unet"],
        text_encoder_lora_layers=layers.get("text_encoder"),
        text_encoder_2_lora_layers=layers.get("text_encoder_2"),
        weight_name=path.name,
    )
    return path
