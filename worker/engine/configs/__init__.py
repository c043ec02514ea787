"""Shipped diffusers-layout configs (no weights) that let a single-file checkpoint load offline."""

from pathlib import Path

SDXL_BASE = Path(__file__).parent / "sdxl-base"
"""The published stabilityai/stable-diffusion-xl-base-1.0 configs, without tokenizers or weights."""
