"""The NSFW censor (`black_out_nsfw`): the checker's verdict per image, black images with a note, and the
flag's path through the worker engine for every job kind."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from contracts import ImageInputs, JobType
from tests.worker.engine.support import make_params
from tests.worker.tiny_safety_checker import (
    FLAG_ALL,
    FLAG_NONE,
    save_checker,
    tiny_processor,
    tiny_safety_checker,
    write_tiny_safety_checker,
)
from worker.engine.censor import CENSORED_NOTE, SAFETY_CHECKER_FOLDER, NsfwCensor
from worker.engine.folders import MissingModelError, ModelFolders
from worker.engine.jobs import JobImages
from worker.engine.metadata import metadata_text
from worker.engine.runs import GeneratedImage
from worker.settings import WorkerSettings
from worker.warm_models import WorkerEngine

SOURCE = "inputs/job/image.png"


def noise(width: int = 64, height: int = 48, seed: int = 1) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def censor_with(tmp_path: Path, threshold: float) -> NsfwCensor:
    write_tiny_safety_checker(tmp_path / SAFETY_CHECKER_FOLDER, threshold)
    return NsfwCensor(ModelFolders(tmp_path))


def test_a_flagged_image_comes_back_black_with_a_note(tmp_path: Path) -> None:
    check = censor_with(tmp_path, FLAG_ALL).load()
    original = GeneratedImage(0, 7, noise(), notes=("earlier note",))
    result = check(original)
    assert result.image.size == (64, 48) and result.image.mode == "RGB"
    assert not np.asarray(result.image).any()
    assert result.notes == ("earlier note", CENSORED_NOTE) and (result.index, result.seed) == (0, 7)
    assert np.asarray(original.image).any()  # the engine's image itself is left alone


def test_an_unflagged_image_is_unchanged(tmp_path: Path) -> None:
    check = censor_with(tmp_path, FLAG_NONE).load()
    original = GeneratedImage(1, 8, noise())
    assert check(original) is original


@torch.no_grad()
def test_the_verdict_follows_each_image_against_a_reference(tmp_path: Path) -> None:
    # Concept 0's threshold between two images' cosine to it: exactly the one above is flagged.
    checker, processor = tiny_safety_checker(FLAG_NONE), tiny_processor()
    bright, dark = Image.new("RGB", (40, 40), (250, 240, 230)), noise(seed=5)

    def cosine(image: Image.Image) -> float:
        pixels = processor(images=image, return_tensors="pt").pixel_values
        embeds = checker.visual_projection(checker.vision_model(pixels).pooler_output)
        return torch.nn.functional.cosine_similarity(embeds, checker.concept_embeds[:1]).item()

    high, low = sorted([(cosine(bright), bright), (cosine(dark), dark)], key=lambda pair: pair[0])[::-1]
    assert high[0] - low[0] > 0.01  # far enough apart for the checker's rounding to 3 decimals
    checker.concept_embeds_weights[0] = (high[0] + low[0]) / 2
    save_checker(checker, tmp_path / SAFETY_CHECKER_FOLDER)
    check = NsfwCensor(ModelFolders(tmp_path)).load()
    assert not np.asarray(check(GeneratedImage(0, 1, high[1])).image).any()
    assert check(kept := GeneratedImage(1, 1, low[1])) is kept


def test_release_drops_the_checker_and_load_reads_it_again(tmp_path: Path) -> None:
    censor = censor_with(tmp_path, FLAG_NONE)
    assert not censor.loaded
    censor.load()
    assert censor.loaded
    censor.release()
    assert not censor.loaded


def test_the_flag_without_the_folder_fails_naming_it_before_any_model_loads(
    tmp_path: Path, engine_cache_dir: Path
) -> None:
    engine = WorkerEngine(WorkerSettings(models_dir=tmp_path, cache_dir=engine_cache_dir))
    params = make_params(steps=1, black_out_nsfw=True)
    with pytest.raises(MissingModelError) as failure:
        engine.run(JobType.TEXT_TO_IMAGE, params, JobImages(ImageInputs()), [1], lambda _: None)
    assert SAFETY_CHECKER_FOLDER in str(failure.value) and "config.json" in str(failure.value)
    assert "stable-diffusion-safety-checker" in str(failure.value)
    assert not engine.loaded and not engine.censor.loaded


def test_without_the_flag_the_checker_is_never_loaded(tiny_models_dir: Path, engine_cache_dir: Path) -> None:
    assert not (tiny_models_dir / SAFETY_CHECKER_FOLDER).exists()
    engine = WorkerEngine(WorkerSettings(models_dir=tiny_models_dir, cache_dir=engine_cache_dir))
    job = JobImages(ImageInputs())
    images = list(engine.run(JobType.TEXT_TO_IMAGE, make_params(steps=1), job, [1], lambda _: None))
    assert len(images) == 1 and np.asarray(images[0].image).any() and not engine.censor.loaded
    assert CENSORED_NOTE not in images[0].record.notes


def test_the_engine_blacks_out_every_job_kind_and_notes_it_in_the_metadata(
    tmp_path: Path, tiny_models_dir: Path, engine_cache_dir: Path
) -> None:
    (tmp_path / "checkpoints").symlink_to(tiny_models_dir / "checkpoints")
    write_tiny_safety_checker(tmp_path / SAFETY_CHECKER_FOLDER, FLAG_ALL)
    engine = WorkerEngine(WorkerSettings(models_dir=tmp_path, cache_dir=engine_cache_dir))
    params = make_params(steps=1, black_out_nsfw=True)
    drawn = list(engine.run(JobType.TEXT_TO_IMAGE, params, JobImages(ImageInputs()), [1], lambda _: None))
    upscale = JobImages(
        ImageInputs(input_image_key=SOURCE, uov_method="Upscale (Fast 2x)"), {SOURCE: noise()}
    )
    resized = list(engine.run(JobType.UPSCALE_VARY, params, upscale, [1], lambda _: None))
    assert engine.censor.loaded
    assert [g.image.size for g in drawn + resized] == [(64, 64), (128, 96)]
    for generated in drawn + resized:
        assert not np.asarray(generated.image).any()
        assert generated.record is not None and CENSORED_NOTE in generated.record.notes
        text, _ = metadata_text(generated.record, generated.seed)
        assert CENSORED_NOTE in json.loads(text)["notes"]
