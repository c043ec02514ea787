"""A custom VAE from `models/vae` replaces the checkpoint's for a job, and the next job gets its own back."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL
from safetensors.torch import save_file

from contracts import ImageInputs, JobType
from contracts.params import AdvancedParams
from tests.worker.engine.support import make_params, pixels
from worker.engine.folders import MissingModelError
from worker.engine.jobs import JobImages
from worker.engine.sgm_layout import VAE_PREFIX, vae_to_ldm
from worker.settings import WorkerSettings
from worker.warm_models import WorkerEngine


@pytest.fixture
def worker(tmp_path: Path, tiny_models_dir: Path, engine_cache_dir: Path) -> WorkerEngine:
    shutil.copytree(tiny_models_dir / "checkpoints", tmp_path / "checkpoints")
    engine = WorkerEngine(WorkerSettings(models_dir=tmp_path, cache_dir=engine_cache_dir))
    own = engine.load().sdxl.pipeline.vae
    torch.manual_seed(99)  # same architecture, other weights, saved as a standalone original-layout file
    other = AutoencoderKL.from_config(own.config)
    state = vae_to_ldm(other.state_dict(), len(own.config.block_out_channels))
    (tmp_path / "vae").mkdir()
    save_file(
        {key.removeprefix(VAE_PREFIX): t.contiguous().clone() for key, t in state.items()},
        tmp_path / "vae" / "other_vae.safetensors",
    )
    return engine


def _run(worker: WorkerEngine, vae_name: str) -> tuple[np.ndarray, str]:
    params = make_params(steps=1, sampler_name="euler", scheduler_name="normal").model_copy(
        update={"advanced_params": AdvancedParams(overwrite_step=1, vae_name=vae_name, sampler_name="euler")}
    )
    image = next(
        iter(worker.run(JobType.TEXT_TO_IMAGE, params, JobImages(ImageInputs()), [4], lambda _: None))
    )
    return pixels(image.image), image.record.vae


def test_a_custom_vae_decodes_one_job_and_the_models_own_comes_back(worker: WorkerEngine) -> None:
    own, own_name = _run(worker, "Default (model)")
    custom, custom_name = _run(worker, "other_vae")  # the stem names the file
    again, _ = _run(worker, "Default (model)")
    assert (own_name, custom_name) == ("Default (model)", "other_vae")
    assert np.abs(custom - own).max() > 10 and (again == own).all()
    _run(worker, "other_vae.safetensors")
    assert worker.vaes.loads == 1  # kept loaded between jobs


def test_a_missing_vae_names_the_file_and_the_vae_folder(worker: WorkerEngine, tmp_path: Path) -> None:
    with pytest.raises(
        MissingModelError, match=re.escape(f"`ponyDiffusionV6XL_vae.safetensors` in `{tmp_path / 'vae'}`")
    ):
        _run(worker, "ponyDiffusionV6XL_vae.safetensors")


def test_a_preset_vae_the_worker_lacks_is_left_out_with_a_note(
    tmp_path: Path, tiny_models_dir: Path, engine_cache_dir: Path
) -> None:
    shutil.copytree(tiny_models_dir / "checkpoints", tmp_path / "checkpoints")
    settings = WorkerSettings(models_dir=tmp_path, cache_dir=engine_cache_dir, preset="pony_v6")
    params = make_params(steps=1)  # vae_name left at the API default: the preset wants its pony VAE
    images = WorkerEngine(settings).run(
        JobType.TEXT_TO_IMAGE, params, JobImages(ImageInputs()), [1], lambda _: None
    )
    record = next(iter(images)).record
    assert record.vae == "Default (model)"
    assert any("ponyDiffusionV6XL_vae.safetensors" in note for note in record.notes)
