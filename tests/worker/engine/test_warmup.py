"""The worker engine: model folder scans, and release then lazy reload."""

from __future__ import annotations

from pathlib import Path

from contracts import ImageInputs, JobType
from tests.worker.engine.support import make_params
from worker.engine.jobs import JobImages
from worker.settings import WorkerSettings
from worker.warmup import WorkerEngine, load_engine


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
