"""The tiny SDXL checkpoint, written once per session, and an engine on it.

`FLEET_TEST_VRAM=low` (or `very_low`) runs every engine test with the engine's models under that VRAM
mode's offload hooks (`worker.engine.vram`); on the CPU the images must not change.
"""

from __future__ import annotations

import copy
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a test that reaches for the hub fails instead of hanging

from pathlib import Path

import pytest
from diffusers import StableDiffusionXLPipeline

from worker.engine.loader import ModelLibrary
from worker.engine.sdxl import SDXLEngine
from worker.engine.tiny import TINY_NAME, write_tiny_checkpoint
from worker.engine.vram import VramMode

TINY_FILE = f"{TINY_NAME}.safetensors"


@pytest.fixture(scope="session")
def engine_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("engine-cache")


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory: pytest.TempPathFactory, engine_cache_dir: Path) -> Path:
    folder = tmp_path_factory.mktemp("engine-models")
    write_tiny_checkpoint(folder / "checkpoints", cache_dir=engine_cache_dir)
    return folder


@pytest.fixture(scope="session")
def tiny_library(tiny_models_dir: Path, engine_cache_dir: Path) -> ModelLibrary:
    return ModelLibrary(tiny_models_dir, engine_cache_dir)


@pytest.fixture(scope="session")
def tiny_pipeline(tiny_library: ModelLibrary) -> StableDiffusionXLPipeline:
    return tiny_library.load(TINY_FILE)


@pytest.fixture(scope="session")
def engine(tiny_pipeline: StableDiffusionXLPipeline) -> SDXLEngine:
    mode = VramMode(os.environ.get("FLEET_TEST_VRAM", VramMode.NORMAL))
    if mode is VramMode.NORMAL:
        return SDXLEngine(tiny_pipeline, model_name=TINY_FILE)
    # Other fixtures build models from the shared pipeline's weights, which offloading moves.
    return SDXLEngine(copy.deepcopy(tiny_pipeline), model_name=TINY_FILE, vram=mode)
