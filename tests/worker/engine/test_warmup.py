"""The worker engine: model folder scans, and release then lazy reload."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from PIL import Image

from contracts import ImageInputs, JobType
from tests.worker.engine.support import make_params
from worker.engine.jobs import JobImages
from worker.engine.sdxl import GeneratedImage, RunInfo
from worker.settings import WorkerSettings
from worker.warmup import WorkerEngine, load_engine, with_run_info


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


def test_image_jobs_images_carry_the_latest_run_info() -> None:
    # jobs.py builds its GeneratedImages without names; the worker fills them from the engine's last run.
    sdxl = SimpleNamespace(last_run=RunInfo("euler", "normal", "refiner.safetensors", "joint", ("a note",)))
    blank = Image.new("RGB", (8, 8))
    named = GeneratedImage(1, 6, blank, "heun", "karras")

    filled, kept = with_run_info(sdxl, iter([GeneratedImage(0, 5, blank), named]))  # type: ignore[arg-type]

    assert (filled.index, filled.seed, filled.image) == (0, 5, blank)
    assert (filled.sampler_name, filled.scheduler_name, filled.refiner_model_name) == (
        "euler",
        "normal",
        "refiner.safetensors",
    )
    assert filled.notes == ("a note",)
    assert kept is named  # an image that says what ran is left alone
