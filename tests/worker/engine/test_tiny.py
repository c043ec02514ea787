from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from tests.worker.engine.support import make_params, pixels
from worker.engine.sdxl import SDXLEngine
from worker.engine.tiny import TINY_NAME, build_tiny_pipeline, write_tiny_checkpoint


def test_checkpoint_is_one_original_layout_file_plus_weightless_configs(tiny_models_dir: Path) -> None:
    checkpoints = tiny_models_dir / "checkpoints"
    with safe_open(checkpoints / f"{TINY_NAME}.safetensors", framework="pt") as weights:
        keys = list(weights.keys())
    prefixes = {key.split(".")[0] for key in keys}

    assert prefixes == {"model", "first_stage_model", "conditioner"}
    assert any(key.startswith("conditioner.embedders.0.transformer.text_model.") for key in keys)
    assert "conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias" in keys  # "SDXL base"

    sidecar = checkpoints / f"{TINY_NAME}.config"
    files = {path.relative_to(sidecar).as_posix() for path in sidecar.rglob("*") if path.is_file()}
    assert {
        "model_index.json",
        "unet/config.json",
        "vae/config.json",
        "scheduler/scheduler_config.json",
    } <= files
    assert {"text_encoder/config.json", "text_encoder_2/config.json"} <= files
    assert any(name.startswith("tokenizer/") for name in files)
    assert any(name.startswith("tokenizer_2/") for name in files)
    assert not [name for name in files if name.endswith((".safetensors", ".bin"))]
    assert (
        json.loads((sidecar / "model_index.json").read_text())["_class_name"] == "StableDiffusionXLPipeline"
    )


def test_every_machine_writes_the_same_weights(
    tmp_path: Path, tiny_models_dir: Path, engine_cache_dir: Path
) -> None:
    again = write_tiny_checkpoint(tmp_path / "checkpoints", cache_dir=engine_cache_dir)

    first = load_file(tiny_models_dir / "checkpoints" / f"{TINY_NAME}.safetensors")
    second = load_file(again)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[key], second[key]) for key in first)


def test_single_file_loads_to_the_in_memory_pipeline(engine: SDXLEngine, engine_cache_dir: Path) -> None:
    in_memory = SDXLEngine(build_tiny_pipeline(engine_cache_dir))
    params = make_params(steps=3, sampler_name="euler", scheduler_name="normal")

    loaded = next(iter(engine.text_to_image(params, [7], lambda _: None))).image
    expected = next(iter(in_memory.text_to_image(params, [7], lambda _: None))).image

    assert np.array_equal(pixels(loaded), pixels(expected))
    assert pixels(loaded).std() > 1  # a real (if random) picture, not a flat one
