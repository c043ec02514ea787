"""The worker's engine: loaded once at start, dropped by `ReleaseMemory`, reloaded on the next job."""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import torch

from worker.engine.folders import ModelFolders
from worker.engine.jobs import JobEngine, JobImages
from worker.engine.loader import ModelLibrary
from worker.engine.sdxl import GeneratedImage, SDXLEngine
from worker.settings import WorkerSettings

if TYPE_CHECKING:
    from contracts import GenerationParams, JobType
    from worker.engine.sdxl import StepInfo

log = logging.getLogger(__name__)

OnStep = Callable[["StepInfo"], None]


class WorkerEngine:
    """The runner's engine for one worker process; every entry loads the pipeline first if needed."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.library = ModelLibrary(
            settings.models_dir, settings.cache_dir, default_name=settings.default_model
        )
        self.folders = ModelFolders(settings.models_dir)
        self._jobs: JobEngine | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._jobs is not None

    def load(self) -> JobEngine:
        """The engine on the default checkpoint, writing the tiny model when none is there."""
        with self._lock:
            if self._jobs is None:
                self.library.ensure_default()
                pipeline = self.library.load(self.library.default_name)
                log.info("loaded %s from %s", self.library.default_name, self.settings.models_dir)
                sdxl = SDXLEngine(
                    pipeline,
                    device=self.settings.device,
                    model_name=self.library.default_name,
                    refiners=self.library,
                )
                self._jobs = JobEngine(sdxl, self.folders)
            return self._jobs

    def release(self) -> None:
        """Drop every loaded model (Fooocus-API's clean_vram); the next job loads them again."""
        with self._lock:
            if self._jobs is not None:
                self._jobs.release()
            self._jobs = None
            self.library._release()
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    def checkpoints(self) -> list[str]:
        return self.library.checkpoints()

    def loras(self) -> list[str]:
        return self.folders.names("loras")

    def scan(self) -> dict[str, list[str]]:
        """Rescan every model folder (folders are read on every call; nothing is cached)."""
        return self.folders.scan()

    def run(
        self,
        job_type: JobType,
        params: GenerationParams,
        inputs: JobImages,
        seeds: list[int],
        on_step: OnStep,
    ) -> Iterator[GeneratedImage]:
        """Run a job on the loaded engine, loading it again first if memory was released."""
        jobs = self.load()
        jobs.sdxl.last_run = None  # an image made without diffusion must not inherit the last job's
        return with_run_info(jobs.sdxl, jobs.run(job_type, params, inputs, seeds, on_step))


def with_run_info(sdxl: SDXLEngine, images: Iterator[GeneratedImage]) -> Iterator[GeneratedImage]:
    """Images of the image jobs, which do not say what ran, with the engine's latest `RunInfo`
    (the sampler, scheduler and refiner actually used, and any notes) for their metadata."""
    for generated in images:
        if not generated.sampler_name and sdxl.last_run is not None:
            run = sdxl.last_run
            generated = GeneratedImage.of_run(generated.index, generated.seed, generated.image, run)
        yield generated


def load_engine(settings: WorkerSettings) -> tuple[WorkerEngine, list[str]]:
    """Return the loaded worker engine and the checkpoint names this worker has."""
    engine = WorkerEngine(settings)
    engine.load()
    return engine, engine.checkpoints()
