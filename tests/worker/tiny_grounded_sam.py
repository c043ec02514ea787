"""Tiny random-weight GroundingDINO (tiny Swin, tiny BERT with a local vocabulary) and SAM, written with
`save_pretrained` in the folders `worker.engine.grounded_sam` reads. Nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    BertConfig,
    BertTokenizerFast,
    GroundingDinoConfig,
    GroundingDinoForObjectDetection,
    GroundingDinoImageProcessor,
    GroundingDinoProcessor,
    SamConfig,
    SamImageProcessor,
    SamMaskDecoderConfig,
    SamModel,
    SamProcessor,
    SamPromptEncoderConfig,
    SamVisionConfig,
    SwinConfig,
)

# BERT's special tokens, then the words the tests and Fooocus's enhance defaults use.
VOCABULARY = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    ".",
    "face",
    "eye",
    "mouth",
    "hair",
    "hand",
    "body",
]


def write_tiny_grounding_dino(folder: Path, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(VOCABULARY) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)
    # 128 px keeps the smallest feature map (1/64) above 1×1, which GroupNorm needs.
    images = GroundingDinoImageProcessor(size={"shortest_edge": 128, "longest_edge": 256})
    swin = SwinConfig(
        embed_dim=8,
        depths=[1, 1, 1, 1],
        num_heads=[1, 1, 1, 1],
        window_size=2,
        out_features=["stage2", "stage3", "stage4"],
    )
    bert = BertConfig(
        vocab_size=len(VOCABULARY),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    config = GroundingDinoConfig(
        backbone_config=swin,
        text_config=bert,
        num_queries=10,
        d_model=32,  # GroupNorm(32, d_model)
        encoder_layers=1,
        decoder_layers=2,  # the box heads of decoder layers 1.. are tied to layer 0's
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_n_points=2,
        decoder_n_points=2,
        max_text_len=16,
    )
    torch.manual_seed(seed)
    GroundingDinoForObjectDetection(config).save_pretrained(folder)
    GroundingDinoProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def write_tiny_sam(folder: Path, seed: int = 0) -> Path:
    vision = SamVisionConfig(
        hidden_size=16,
        output_channels=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=64,
        patch_size=8,
        mlp_dim=32,
        global_attn_indexes=[1],
        window_size=4,
        num_pos_feats=8,  # half the prompt encoder's width
    )
    prompt = SamPromptEncoderConfig(hidden_size=16, image_size=64, patch_size=8, mask_input_channels=4)
    decoder = SamMaskDecoderConfig(
        hidden_size=16, num_hidden_layers=2, num_attention_heads=2, mlp_dim=32, iou_head_hidden_dim=16
    )
    torch.manual_seed(seed)
    SamModel(
        SamConfig(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)
    ).save_pretrained(folder)
    images = SamImageProcessor(size={"longest_edge": 64}, pad_size={"height": 64, "width": 64})
    SamProcessor(image_processor=images).save_pretrained(folder)
    return folder


def write_tiny_grounded_sam(models: Path) -> None:
    """`models/grounding-dino/grounding-dino-tiny/` and `models/sam/vit_b/`: the `sam` defaults."""
    write_tiny_grounding_dino(models / "grounding-dino" / "grounding-dino-tiny")
    write_tiny_sam(models / "sam" / "vit_b")
