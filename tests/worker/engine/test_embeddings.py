"""Textual-inversion embeddings named in a prompt (`embedding:name`) reach both text encoders."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from contracts import ImageInputs, JobType
from tests.worker.engine.support import make_params, pixels
from worker.engine.embeddings import referenced
from worker.engine.folders import MissingModelError
from worker.engine.jobs import JobImages
from worker.settings import WorkerSettings
from worker.warm_models import WorkerEngine


def test_references_are_found_once_each_in_order() -> None:
    text = "a cat, (embedding:style_a:1.2), embedding:neg.v2 and embedding:style_a"
    assert referenced(text) == ["style_a", "neg.v2"]
    assert referenced("no embeddings: here") == []


@pytest.fixture
def worker(tmp_path: Path, tiny_models_dir: Path, engine_cache_dir: Path) -> WorkerEngine:
    shutil.copytree(tiny_models_dir / "checkpoints", tmp_path / "checkpoints")
    engine = WorkerEngine(WorkerSettings(models_dir=tmp_path, cache_dir=engine_cache_dir))
    pipeline = engine.load().sdxl.pipeline
    widths = (pipeline.text_encoder.config.hidden_size, pipeline.text_encoder_2.config.hidden_size)
    torch.manual_seed(5)  # two vectors per encoder, far from any real token's embedding
    (tmp_path / "embeddings").mkdir()
    save_file(
        {"clip_l": torch.randn(2, widths[0]) * 3, "clip_g": torch.randn(2, widths[1]) * 3},
        tmp_path / "embeddings" / "my_style.safetensors",
    )
    return engine


def _run(worker: WorkerEngine, prompt: str) -> tuple[np.ndarray, str]:
    params = make_params(steps=1, sampler_name="euler", scheduler_name="normal").model_copy(
        update={"prompt": prompt}
    )
    image = next(
        iter(worker.run(JobType.TEXT_TO_IMAGE, params, JobImages(ImageInputs()), [4], lambda _: None))
    )
    return pixels(image.image), image.record.params.prompt


def test_an_embedding_in_the_prompt_changes_the_image(worker: WorkerEngine) -> None:
    plain, _ = _run(worker, "a photo of a cat")
    styled, recorded = _run(worker, "a photo of a cat, embedding:my_style")
    assert np.abs(styled - plain).max() > 0 and recorded == "a photo of a cat, embedding:my_style"
    again, _ = _run(worker, "a photo of a cat, (embedding:my_style:1.0)")  # loaded once, used again
    assert again.shape == plain.shape
    tokenizer = worker.load().sdxl.pipeline.tokenizer_2
    assert "<my_style>" in tokenizer.get_vocab() and "<my_style>_1" in tokenizer.get_vocab()


def test_a_missing_embedding_names_the_file_and_the_folder(worker: WorkerEngine, tmp_path: Path) -> None:
    expected = re.escape(f"`nothing.safetensors` in `{tmp_path / 'embeddings'}`")
    with pytest.raises(MissingModelError, match=expected):
        _run(worker, "a cat, embedding:nothing")
