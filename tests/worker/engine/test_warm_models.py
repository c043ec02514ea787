"""The worker engine: model folder scans, and release then lazy reload."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from contracts import ImageInputs, JobType
from tests.worker.engine.support import make_params
from worker.engine.jobs import JobImages
from worker.settings import WorkerSettings
from worker.warm_models import WARM_UP_STEPS, WorkerEngine, load_engine


def test_release_drops_the_pipeline_and_the_next_job_reloads_it(
    tiny_models_dir: Path, engine_cache_dir: Path
) -> None:
    settings = WorkerSettings(models_dir=tiny_models_dir, cache_dir=engine_cache_dir)
    engine, names = load_engine(settings)
    assert names == ["fleet-tiny-sdxl.safetensors"] and engine.loaded
    engine.release()
    assert not engine.loaded
    job = JobImages(ImageInputs())
    images = list(engine.run(JobType.TEXT_TO_IMAGE, make_params(steps=1), job, [1], lambda info: None))
    assert len(images) == 1 and engine.loaded


def test_scan_lists_every_model_folder(tmp_path: Path, engine_cache_dir: Path) -> None:
    (tmp_path / "loras").mkdir()
    (tmp_path / "loras" / "detail.safetensors").write_bytes(b"")
    (tmp_path / "loras" / "notes.txt").write_text("")
    (tmp_path / "captioners" / "blip").mkdir(parents=True)
    engine = WorkerEngine(WorkerSettings(models_dir=tmp_path, cache_dir=engine_cache_dir))
    found = engine.scan()
    assert found["loras"] == ["detail.safetensors"] == engine.loras()
    assert found["captioners"] == ["blip"] and found["checkpoints"] == [] and not engine.loaded


def test_the_preset_and_the_performance_mode_shape_the_run(
    tiny_models_dir: Path, engine_cache_dir: Path
) -> None:
    settings = WorkerSettings(models_dir=tiny_models_dir, cache_dir=engine_cache_dir, preset="lightning")
    engine = WorkerEngine(settings)
    params = make_params(steps=-1, guidance_scale=6.0)  # steps from the mode: the preset's Lightning, 4
    images = list(engine.run(JobType.TEXT_TO_IMAGE, params, JobImages(ImageInputs()), [1], lambda _: None))
    record = images[0].record
    assert record.preset == "lightning" and record.base_model == "fleet-tiny-sdxl.safetensors"
    assert record.params.performance_selection.value == "Lightning" and record.params.steps == 4
    assert record.params.guidance_scale == 1.0  # forced by the mode over the request's 6.0
    advanced = record.params.advanced_params
    assert (advanced.sampler_name, advanced.scheduler_name) == ("euler", "sgm_uniform")
    # The preset has no user LoRAs; the worker lacks the Lightning LoRA and the preset's checkpoint: said so.
    assert record.loras == ()
    assert any("sdxl_lightning_4step_lora.safetensors" in note for note in record.notes)
    assert any("juggernautXL_v8Rundiffusion.safetensors" in note for note in record.notes)


def test_checkpoints_stay_warm_within_the_cache_bound(
    tmp_path: Path, tiny_models_dir: Path, engine_cache_dir: Path
) -> None:
    checkpoints = tmp_path / "checkpoints"
    shutil.copytree(tiny_models_dir / "checkpoints", checkpoints)
    shutil.copy(checkpoints / "fleet-tiny-sdxl.safetensors", checkpoints / "other.safetensors")
    shutil.copytree(checkpoints / "fleet-tiny-sdxl.config", checkpoints / "other.config")
    order = ["fleet-tiny-sdxl.safetensors", "other.safetensors"] * 2

    one_at_a_time = WorkerEngine(WorkerSettings(models_dir=tmp_path, cache_dir=engine_cache_dir))
    for name in order:
        one_at_a_time.load(name)
    assert one_at_a_time.library.loads == 4 and one_at_a_time.library.warm_names() == ["other.safetensors"]
    assert list(one_at_a_time._engines) == ["other.safetensors"]  # the dropped checkpoint's engine went too

    both = WorkerEngine(WorkerSettings(models_dir=tmp_path, cache_dir=engine_cache_dir, model_cache_gb=1.0))
    engines = [both.load(name) for name in order]
    assert both.library.loads == 2 and engines[0] is engines[2] and engines[0] is not engines[1]
    assert sorted(both._engines) == sorted(both.library.warm_names()) == sorted(set(order))

    both.release()
    assert not both.loaded and both.library.warm_names() == []


def test_compile_compiles_the_unet_in_place_and_warms_it_up_at_start(
    tiny_models_dir: Path, engine_cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real compile of even the tiny UNet takes minutes on this CPU: record the call instead (bench/gpu.py
    # --compile times the real one on a GPU); the warm-up job itself is real.
    compiled: list[str] = []
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, **_: compiled.append(type(self).__name__))
    settings = WorkerSettings(models_dir=tiny_models_dir, cache_dir=engine_cache_dir, compile=True)
    engine, _ = load_engine(settings)
    assert compiled == ["UNet2DConditionModel"]
    warmed = engine.load().sdxl.last_run
    assert warmed is not None and len(warmed.unet_calls) == WARM_UP_STEPS  # a short job ran before any
