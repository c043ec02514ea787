"""LoRAs: the job's list, missing files, and adapters switched on the tiny SDXL without reloading it."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import ControlNetModel

from contracts import ImageInputs, JobType
from contracts.params import Lora, Performance
from tests.worker.engine.support import make_params, pixels
from tests.worker.engine.tiny_lora import write_tiny_lora
from tests.worker.tiny_models import write_tiny_controlnet
from worker.engine.controlnet import load_controlnet
from worker.engine.folders import MissingModelError, ModelFolders
from worker.engine.jobs import JobImages
from worker.engine.loras import LoraAdapters, job_loras, requested_loras
from worker.settings import WorkerSettings
from worker.warm_models import WorkerEngine

NONE = Lora(enabled=True, model_name="None", weight=1.0)


def slots(*loras: tuple[str, float] | tuple[str, float, bool]) -> list[Lora]:
    chosen = [
        Lora(enabled=(entry[2] if len(entry) == 3 else True), model_name=entry[0], weight=entry[1])
        for entry in loras
    ]
    return [*chosen, *[NONE] * (5 - len(chosen))]


# ----- the job's list ---------------------------------------------------------------------------


def test_enabled_slots_then_inline_tags_at_most_five() -> None:
    params = make_params(loras=slots(("a.safetensors", 0.5), ("off", 1.0, False), ("b", -1.5)))
    inline = [("c", 0.3), ("a.safetensors", 2.0), ("d", 1), ("e", 1), ("f", 1)]

    assert requested_loras(params, inline) == [
        ("a.safetensors", 0.5),  # a tag naming a slot's LoRA keeps the slot's weight
        ("b", -1.5),
        ("c", 0.3),
        ("d", 1.0),
        ("e", 1.0),
    ]
    assert requested_loras(make_params(loras=slots())) == []


def test_a_missing_lora_names_the_file_and_the_loras_folder(tmp_path: Path) -> None:
    params = make_params(loras=slots(("detail.safetensors", 0.5)))
    with pytest.raises(MissingModelError) as caught:
        job_loras(params, ModelFolders(tmp_path))
    assert f"`detail.safetensors` in `{tmp_path / 'loras'}`" in str(caught.value)
    # A name cannot leave the folder.
    (tmp_path / "secret.safetensors").write_bytes(b"x")
    with pytest.raises(MissingModelError):
        job_loras(make_params(loras=slots(("../secret.safetensors", 1.0))), ModelFolders(tmp_path))


def test_default_lists_skip_a_missing_file_with_a_note(tmp_path: Path) -> None:
    loras, notes = job_loras(make_params(), ModelFolders(tmp_path), skip_missing=True)
    assert loras == [] and "sd_xl_offset_example-lora_1.0.safetensors" in notes[0]


@pytest.mark.parametrize(
    ("performance", "file", "weight"),
    [
        (Performance.EXTREME_SPEED, "sdxl_lcm_lora.safetensors", 1.0),
        (Performance.LIGHTNING, "sdxl_lightning_4step_lora.safetensors", 1.0),
        (Performance.HYPER_SD, "sdxl_hyper_sd_4step_lora.safetensors", 0.8),
    ],
)
def test_the_performance_lora_comes_last_when_present(
    tmp_path: Path, performance: Performance, file: str, weight: float
) -> None:
    (tmp_path / "loras").mkdir()
    (tmp_path / "loras" / "mine.safetensors").write_bytes(b"x")
    params = make_params(performance_selection=performance, loras=slots(("mine.safetensors", 0.7)))

    loras, notes = job_loras(params, ModelFolders(tmp_path))
    assert loras == [("mine.safetensors", 0.7)] and file in notes[0] and str(tmp_path / "loras") in notes[0]

    (tmp_path / "loras" / file).write_bytes(b"x")
    assert job_loras(params, ModelFolders(tmp_path)) == ([("mine.safetensors", 0.7), (file, weight)], [])


def test_speed_and_quality_have_no_performance_lora(tmp_path: Path) -> None:
    for performance in (Performance.SPEED, Performance.QUALITY):
        assert job_loras(
            make_params(performance_selection=performance, loras=slots()), ModelFolders(tmp_path)
        ) == (
            [],
            [],
        )


# ----- adapters on the tiny SDXL ----------------------------------------------------------------


@pytest.fixture(scope="module")
def lora_models(
    tmp_path_factory: pytest.TempPathFactory, tiny_models_dir: Path, engine_cache_dir: Path
) -> Path:
    """The tiny checkpoint and three LoRAs: `a` (UNet and both text encoders), `b` and `c` (UNet only)."""
    root = tmp_path_factory.mktemp("lora-models")
    shutil.copytree(tiny_models_dir / "checkpoints", root / "checkpoints")
    write_tiny_lora(root / "loras" / "a.safetensors", engine_cache_dir, seed=1)
    write_tiny_lora(root / "loras" / "b.safetensors", engine_cache_dir, seed=2, text_encoders=False)
    write_tiny_lora(root / "loras" / "c.safetensors", engine_cache_dir, seed=3, text_encoders=False)
    return root


@pytest.fixture
def worker(lora_models: Path, engine_cache_dir: Path) -> Iterator[WorkerEngine]:
    engine = WorkerEngine(
        WorkerSettings(models_dir=lora_models, cache_dir=engine_cache_dir, lora_cache_size=2)
    )
    yield engine
    engine.release()


def _image(worker: WorkerEngine, *loras: tuple[str, float]) -> np.ndarray:
    params = make_params(steps=2, loras=slots(*loras), sampler_name="euler", scheduler_name="normal")
    images = worker.run(JobType.TEXT_TO_IMAGE, params, JobImages(ImageInputs()), [5], lambda _: None)
    return pixels(next(iter(images)).image)


def test_a_lora_changes_the_image_and_weight_zero_is_no_lora(worker: WorkerEngine) -> None:
    plain = _image(worker)
    with_a = _image(worker, ("a.safetensors", 1.0))
    assert np.abs(with_a - plain).max() > 10
    assert (_image(worker, ("a.safetensors", 0.0)) == plain).all()
    assert (_image(worker) == plain).all()  # and none again after one was active


def test_switching_loras_between_jobs_keeps_the_checkpoint_loaded(worker: WorkerEngine) -> None:
    first = _image(worker, ("a.safetensors", 1.0))
    second = _image(worker, ("b", 1.0))  # the stem names the file too
    pipeline = worker.load().sdxl.pipeline
    worker.adapters.apply(pipeline, [("a.safetensors", 1.0), ("b.safetensors", 0.5)])

    assert worker.library.loads == 1  # one checkpoint load for both jobs
    assert worker.adapters.loads == 2  # each LoRA file read once, then only switched
    assert (first != second).any()
    assert sorted(pipeline.get_active_adapters()) == sorted(worker.adapters.loaded(pipeline))


def test_least_recently_used_adapters_are_dropped_beyond_the_bound(worker: WorkerEngine) -> None:
    pipeline = worker.load().sdxl.pipeline
    for name in ("a", "b", "c"):
        worker.adapters.apply(pipeline, [(f"{name}.safetensors", 1.0)])
    assert [name.split("_")[0] for name in worker.adapters.loaded(pipeline)] == ["b", "c"]  # bound 2
    present = {name for names in pipeline.get_list_adapters().values() for name in names}
    assert present == set(worker.adapters.loaded(pipeline))
    worker.adapters.apply(pipeline, [("a.safetensors", 1.0)])
    assert worker.adapters.loads == 4  # `a` was dropped, so it is read again
    # A job may use more LoRAs than the bound: none of its own is dropped.
    worker.adapters.apply(pipeline, [(f"{name}.safetensors", 1.0) for name in "abc"])
    assert len(worker.adapters.loaded(pipeline)) == 3


def test_a_missing_lora_fails_the_job_before_it_runs(worker: WorkerEngine, lora_models: Path) -> None:
    expected = re.escape(f"`ghost.safetensors` in `{lora_models / 'loras'}`")
    with pytest.raises(MissingModelError, match=expected):
        _image(worker, ("ghost.safetensors", 1.0))


def test_a_second_pipeline_skips_a_lora_that_does_not_fit_when_not_required(
    worker: WorkerEngine, lora_models: Path
) -> None:
    (lora_models / "loras" / "broken.safetensors").write_bytes(b"not a safetensors file")
    pipeline = worker.load().sdxl.pipeline
    adapters = LoraAdapters(ModelFolders(lora_models))
    try:
        assert adapters.apply(pipeline, [("broken.safetensors", 1.0)], required=False) == []
        with pytest.raises(ValueError, match=re.escape("`broken.safetensors` does not load")):
            adapters.apply(pipeline, [("broken.safetensors", 1.0)])
    finally:
        (lora_models / "loras" / "broken.safetensors").unlink()


def test_an_inline_lora_tag_applies_like_a_slot_and_its_text_is_not_encoded(worker: WorkerEngine) -> None:
    def run(prompt: str) -> tuple[np.ndarray, object]:
        params = make_params(steps=2, prompt=prompt, sampler_name="euler", scheduler_name="normal")
        images = worker.run(JobType.TEXT_TO_IMAGE, params, JobImages(ImageInputs()), [5], lambda _: None)
        image = next(iter(images))
        return pixels(image.image), image.record  # type: ignore[attr-defined]

    tagged, record = run("a photo of a cat <lora:a:1.0>")
    slotted = _image(worker, ("a.safetensors", 1.0))
    assert (tagged == slotted).all()  # same LoRA, same prompt once the tag is dropped
    applied = [(lora.name, lora.weight, lora.path.name) for lora in record.loras]
    assert applied == [("a", 1.0, "a.safetensors")]
    assert record.full_prompt and all("<lora" not in text for text in record.full_prompt)


def test_a_controlnet_builds_on_a_unet_that_carries_lora_adapters(
    worker: WorkerEngine, tmp_path: Path
) -> None:
    pipeline = worker.load().sdxl.pipeline
    write_tiny_controlnet(tmp_path / "canny.safetensors", pipeline.unet)
    worker.adapters.apply(pipeline, [("a.safetensors", 1.0)])
    worker.adapters.apply(pipeline, [])  # disabled, but peft's layers stay in the UNet
    # Before: `from_unet` failed on peft's `base_layer`/`lora_*` names once any LoRA job had run.
    controlnet = load_controlnet(
        tmp_path / "canny.safetensors", pipeline.unet, torch.device("cpu"), torch.float32
    )
    assert isinstance(controlnet, ControlNetModel)
    assert worker.adapters.loaded(pipeline)  # the shared UNet keeps its adapters
