"""A tiny random-weight safety checker in Hugging Face layout, as `models/safety_checker/` holds it."""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
from transformers import CLIPConfig, CLIPImageProcessorPil

SIDE = 32
# Cosine distances lie in [-1, 1]: a threshold below flags every image, one above flags none.
FLAG_ALL, FLAG_NONE = -2.0, 2.0


def tiny_safety_checker(threshold: float = FLAG_NONE) -> StableDiffusionSafetyChecker:
    """The model with every concept's threshold at `threshold` (the special-care ones never match)."""
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config={
            "hidden_size": 16,
            "intermediate_size": 24,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "image_size": SIDE,
            "patch_size": 8,
        },
        projection_dim=16,
    )
    checker = StableDiffusionSafetyChecker(config).eval()
    with torch.no_grad():
        checker.concept_embeds.normal_()
        checker.special_care_embeds.normal_()
        checker.concept_embeds_weights.fill_(threshold)
        checker.special_care_embeds_weights.fill_(FLAG_NONE)
    return checker


def tiny_processor() -> CLIPImageProcessorPil:
    return CLIPImageProcessorPil(size={"shortest_edge": SIDE}, crop_size={"height": SIDE, "width": SIDE})


def write_tiny_safety_checker(folder: Path, threshold: float = FLAG_NONE) -> Path:
    """Write the model and its image processor to `folder` (a few hundred kB, under a second)."""
    folder.mkdir(parents=True, exist_ok=True)
    save_checker(tiny_safety_checker(threshold), folder)
    return folder


def save_checker(checker: StableDiffusionSafetyChecker, folder: Path) -> None:
    checker.save_pretrained(folder)
    tiny_processor().save_pretrained(folder)
