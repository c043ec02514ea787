from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from diffusers import StableDiffusionXLPipeline
from transformers import CLIPTokenizer

from tests.worker.engine.conftest import TINY_FILE
from tests.worker.engine.support import make_params, pixels
from worker.engine.loader import ModelLibrary, NoCheckpointError
from worker.engine.sdxl import SDXLEngine
from worker.engine.tiny import TINY_NAME, build_tiny_pipeline


def _image(pipeline: StableDiffusionXLPipeline, seed: int = 3) -> np.ndarray:
    params = make_params(steps=2, sampler_name="euler", scheduler_name="normal")
    return pixels(next(iter(SDXLEngine(pipeline).text_to_image(params, [seed], lambda _: None))).image)


@pytest.fixture
def library_copy(tmp_path: Path, tiny_models_dir: Path, engine_cache_dir: Path) -> ModelLibrary:
    """A private models folder holding the tiny single file, for tests that add or remove checkpoints."""
    shutil.copytree(tiny_models_dir, tmp_path / "models")
    return ModelLibrary(tmp_path / "models", engine_cache_dir)


def test_lists_single_files_and_diffusers_folders_but_not_sidecars(library_copy: ModelLibrary) -> None:
    checkpoints = library_copy.checkpoints_dir
    (checkpoints / "b-diffusers").mkdir()
    (checkpoints / "b-diffusers" / "model_index.json").write_text("{}")
    (checkpoints / "not-a-model").mkdir()
    (checkpoints / "notes.txt").write_text("")
    (checkpoints / ".half-written.safetensors").write_text("")

    assert library_copy.checkpoints() == ["b-diffusers", TINY_FILE]
    assert library_copy.default_name == "b-diffusers"  # the first one, without a configured default


def test_configured_default_wins_and_unknown_names_fall_back(
    tiny_models_dir: Path, engine_cache_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    library = ModelLibrary(tiny_models_dir, engine_cache_dir, default_name=TINY_NAME)

    assert library.default_name == TINY_FILE
    assert library.resolve(TINY_NAME) == TINY_FILE  # stems match as well as file names
    with caplog.at_level(logging.WARNING, logger="worker.engine.loader"):
        pipeline = library.load("juggernautXL_v8Rundiffusion.safetensors")

    assert isinstance(pipeline, StableDiffusionXLPipeline)
    assert library.loaded_name == TINY_FILE
    assert "juggernautXL_v8Rundiffusion.safetensors" in caplog.text


def test_keeps_the_loaded_pipeline_warm(
    tiny_library: ModelLibrary, tiny_pipeline: StableDiffusionXLPipeline
) -> None:
    assert tiny_library.load(TINY_FILE) is tiny_pipeline
    assert tiny_library.load("unknown") is tiny_pipeline


def test_diffusers_folder_loads_like_the_single_file(
    library_copy: ModelLibrary, tiny_pipeline: StableDiffusionXLPipeline, engine_cache_dir: Path
) -> None:
    build_tiny_pipeline(engine_cache_dir).save_pretrained(library_copy.checkpoints_dir / "tiny-diffusers")

    pipeline = library_copy.load("tiny-diffusers")

    assert library_copy.loaded_name == "tiny-diffusers"
    assert np.array_equal(_image(pipeline), _image(tiny_pipeline))
    assert library_copy.load(TINY_FILE) is not pipeline  # switching checkpoints replaces the warm one


def test_empty_folder_gets_the_tiny_default(tmp_path: Path, engine_cache_dir: Path) -> None:
    library = ModelLibrary(tmp_path / "models", engine_cache_dir)
    with pytest.raises(NoCheckpointError):
        library.load("anything")

    assert library.ensure_default() == TINY_FILE
    assert library.checkpoints() == [TINY_FILE]
    assert library.ensure_default() == TINY_FILE  # a second call writes nothing new


def test_single_file_without_sidecar_uses_shipped_sdxl_configs(
    tmp_path: Path, engine_cache_dir: Path
) -> None:
    library = ModelLibrary(tmp_path / "models", tmp_path / "cache")

    config = library.sdxl_base_config()

    assert library.sdxl_base_config() == config  # assembled once
    index = StableDiffusionXLPipeline.load_config(config)
    assert index["unet"] == ["diffusers", "UNet2DConditionModel"]
    tokenizer_2 = CLIPTokenizer.from_pretrained(config / "tokenizer_2", local_files_only=True)
    assert tokenizer_2.pad_token == "!"
    assert tokenizer_2("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]


def test_every_attention_of_a_loaded_checkpoint_is_sdpa(tiny_library: ModelLibrary) -> None:
    # PyTorch's scaled_dot_product_attention (flash or memory-efficient kernels on a GPU) everywhere.
    pipeline = tiny_library.load(TINY_FILE)
    for model in (pipeline.unet, pipeline.vae):
        assert {type(p).__name__ for p in model.attn_processors.values()} == {"AttnProcessor2_0"}
    for encoder in (pipeline.text_encoder, pipeline.text_encoder_2):
        assert encoder.config._attn_implementation == "sdpa"
