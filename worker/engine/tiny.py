"""A tiny SDXL-architecture model with random weights: the default checkpoint and the tests' model.

No diffusion weights ship with any package and the worker cannot download, so a fresh worker writes
this model (about 35 MB, under a second) and serves it. Its topology follows environment.md: every
SDXL code path (two text encoders, text_time embeddings, /8 latents, single-file detection) runs.
Weights come from a fixed seed, so every machine writes the same file and gets the same images.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import torch
from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from worker.engine import configs
from worker.engine.sgm_layout import sdxl_to_sgm
from worker.engine.tokenizer import VOCAB_SIZE, build_tokenizers, write_tokenizers

TINY_NAME = "fleet-tiny-sdxl"
WEIGHT_SEED = 20251126
CONFIG_SUFFIX = ".config"

_CLIP_L_WIDTH = 32
# The second encoder must be wider than the first (or single-file loading silently swaps their
# weights) and have 10 layers (diffusers recognises SDXL base by `resblocks.9`).
_CLIP_G_WIDTH = 64
_PROJECTION = 32
_TIME_DIM = 8


def _text_config(width: int, layers: int, act: str) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=VOCAB_SIZE,  # the real CLIP vocabulary, so the real tokenizers fit
        hidden_size=width,
        intermediate_size=37,
        num_hidden_layers=layers,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=_PROJECTION,
        hidden_act=act,
        # SDXL's published values: eos id 2 selects the legacy "argmax id" pooling, which finds the end token.
        bos_token_id=0,
        eos_token_id=2,
        pad_token_id=1,
    )


def build_tiny_pipeline(cache_dir: Path, weight_seed: int = WEIGHT_SEED) -> StableDiffusionXLPipeline:
    """The tiny SDXL pipeline in memory, float32 on the CPU, identical on every call with the same
    `weight_seed` (another seed gives another model of the same shape, e.g. a test refiner)."""
    torch.manual_seed(weight_seed)
    text_encoder = CLIPTextModel(_text_config(_CLIP_L_WIDTH, 5, "quick_gelu"))
    torch.manual_seed(weight_seed + 1)
    text_encoder_2 = CLIPTextModelWithProjection(_text_config(_CLIP_G_WIDTH, 10, "gelu"))
    torch.manual_seed(weight_seed + 2)
    unet = UNet2DConditionModel(
        sample_size=8,
        block_out_channels=(32, 64, 64),
        layers_per_block=2,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=_TIME_DIM,
        # six size numbers (h, w, crop top/left, target h/w), each embedded, plus the pooled text
        projection_class_embeddings_input_dim=6 * _TIME_DIM + _PROJECTION,
        cross_attention_dim=_CLIP_L_WIDTH + _CLIP_G_WIDTH,
    )
    torch.manual_seed(weight_seed + 3)
    vae = AutoencoderKL(
        block_out_channels=(32, 32, 64, 64),  # four levels: latents are 1/8 of the image, as in SDXL
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        sample_size=64,
        scaling_factor=0.13025,
    )
    return assemble_pipeline(unet, vae, text_encoder, text_encoder_2, cache_dir)


def assemble_pipeline(
    unet: UNet2DConditionModel,
    vae: AutoencoderKL,
    text_encoder: CLIPTextModel,
    text_encoder_2: CLIPTextModelWithProjection,
    cache_dir: Path,
) -> StableDiffusionXLPipeline:
    """An SDXL pipeline of these models, with the real CLIP tokenizers and SDXL base's scheduler."""
    scheduler_config = json.loads((configs.SDXL_BASE / "scheduler" / "scheduler_config.json").read_text())
    tokenizer, tokenizer_2 = build_tokenizers(cache_dir)
    pipeline = StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        unet=unet,
        scheduler=EulerDiscreteScheduler.from_config(scheduler_config),
        add_watermarker=False,
    )
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def write_config_folder(pipeline: StableDiffusionXLPipeline, cache_dir: Path, target: Path) -> None:
    """Write the pipeline's configs and tokenizers in diffusers layout, without any weights."""
    pipeline.save_config(target)  # model_index.json
    pipeline.unet.save_config(target / "unet")
    pipeline.vae.save_config(target / "vae")
    pipeline.scheduler.save_config(target / "scheduler")
    pipeline.text_encoder.config.save_pretrained(target / "text_encoder")
    pipeline.text_encoder_2.config.save_pretrained(target / "text_encoder_2")
    write_tokenizers(cache_dir, target)


def write_tiny_checkpoint(
    checkpoints_dir: Path,
    name: str = TINY_NAME,
    cache_dir: Path | None = None,
    weight_seed: int = WEIGHT_SEED,
) -> Path:
    """Write `name.safetensors` (original SDXL key layout) and its sidecar `name.config/` folder.

    `cache_dir` keeps the built tokenizer vocabulary; without it a temporary folder is used.
    Both outputs appear atomically, so a concurrent reader sees the old files or the new ones.
    """
    checkpoints_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=checkpoints_dir, prefix=f".{name}.") as scratch:
        work = Path(scratch)
        vocab_cache = cache_dir if cache_dir is not None else work / "cache"
        pipeline = build_tiny_pipeline(vocab_cache, weight_seed)
        state = sdxl_to_sgm(pipeline.unet, pipeline.vae, pipeline.text_encoder, pipeline.text_encoder_2)
        # safetensors refuses views that share storage: give every tensor its own contiguous copy.
        state = {key: tensor.detach().contiguous().clone() for key, tensor in state.items()}
        save_file(state, work / "model.safetensors", metadata={"format": "pt"})
        write_config_folder(pipeline, vocab_cache, work / "config")

        checkpoint = checkpoints_dir / f"{name}.safetensors"
        sidecar = checkpoints_dir / f"{name}{CONFIG_SUFFIX}"
        if sidecar.exists():
            shutil.rmtree(sidecar)
        (work / "config").rename(sidecar)
        (work / "model.safetensors").replace(checkpoint)
    return checkpoint
