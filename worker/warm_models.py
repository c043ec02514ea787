"""The worker's engine: checkpoints loaded on demand and kept warm, LoRAs switched per job, the preset's
defaults and the performance mode's overrides applied before a job runs.

Usage:

    engine = WorkerEngine(settings)
    for generated in engine.run(job_type, params, inputs, seeds, on_step):  # RecordedImage
        store(generated.image, metadata_text(generated.record, generated.seed))

`run` prepares the parameters once (`prepare`: preset → performance overrides → LoRA list), loads the
requested checkpoint (the default when the worker lacks it), makes the job's LoRAs the active adapters and
its VAE the pipeline's, hands the engine the job's user LoRAs for the refiner (`SDXLEngine.refiner_loras`:
applied to the refiner UNet when one runs, a LoRA that does not fit skipped with a note; the performance
LoRA stays off the refiner, as fast modes run none), loads the embeddings its prompts name
(`embedding:name`), and runs the job kind on that checkpoint's `JobEngine`. With `black_out_nsfw`, every
finished image of every job kind then passes the NSFW censor (`worker.engine.censor`). Each image carries a
`RunRecord` of what was used. `ReleaseMemory` drops every checkpoint, adapter, embedding, VAE and the
censor; the next job loads what it needs again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import TYPE_CHECKING

from contracts import AdvancedParams, GenerationParams, ImageInputs, JobType
from worker.engine.censor import NsfwCensor
from worker.engine.devices import gpu_memory_in_use, placement
from worker.engine.embeddings import Embeddings
from worker.engine.folders import MissingModelError, ModelFolders
from worker.engine.jobs import JobEngine, JobImages
from worker.engine.loader import ModelLibrary
from worker.engine.loras import LoraAdapters, LoraWeight, job_loras
from worker.engine.metadata import RecordedImage, RunRecord
from worker.engine.performance import effective_params, performance_lora
from worker.engine.presets import preset
from worker.engine.prompts import PromptEngine
from worker.engine.prompts.syntax import extract_loras
from worker.engine.runs import GeneratedImage
from worker.engine.sdxl import SDXLEngine
from worker.engine.vae import DEFAULT_VAE, VaeSwitch
from worker.engine.vram import GIB, VramMode
from worker.settings import WorkerSettings

if TYPE_CHECKING:
    from worker.engine.runs import StepInfo

log = logging.getLogger(__name__)

OnStep = Callable[["StepInfo"], None]
WARM_UP_STEPS = 2  # enough to run every graph of a step once


class WorkerEngine:
    """The runner's engine for one worker process; every entry loads what the job needs first."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.placement = where = placement(settings.device, settings.dtype, settings.vram)
        free = f"{where.free_bytes / GIB:.1f} GiB free" if where.free_bytes is not None else "no GPU memory"
        log.info(
            "worker.device %s (%s), %s, vram %s (%s)",
            where.device,
            where.name,
            where.dtype_name,
            where.vram,
            free,
        )
        self.preset = preset(settings.preset)
        self.library = ModelLibrary(
            settings.models_dir,
            settings.cache_dir,
            default_name=settings.default_model or self.preset.checkpoint,
            cache_bytes=int(settings.model_cache_gb * GIB),
            dtype=self.placement.dtype,
        )
        self.library.on_evict = self._forget
        self.folders = ModelFolders(settings.models_dir)
        self.adapters = LoraAdapters(self.folders, settings.lora_cache_size)
        self.vaes = VaeSwitch(self.folders, settings.cache_dir)
        self.embeddings = Embeddings(self.folders)
        self.censor = NsfwCensor(
            self.folders, self.placement.device
        )  # loads on the first `black_out_nsfw` job
        # Styles and wildcards of the models folder; the expansion model loads on the first Fooocus V2 job.
        self.prompts = PromptEngine(settings.models_dir, device=self.placement.device)
        self._engines: dict[str, JobEngine] = {}
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return bool(self._engines)

    def load(self, name: str | None = None) -> JobEngine:
        """The engine on checkpoint `name` (the default when None or absent), writing the tiny model
        when the folder is empty."""
        with self._lock:
            self.library.ensure_default()
            pipeline = self.library.load(name or self.library.default_name)
            loaded = self.library.loaded_name
            assert loaded is not None
            if loaded not in self._engines:
                log.info("loaded %s from %s", loaded, self.settings.models_dir)
                self._compile(pipeline)
                self._engines[loaded] = JobEngine(
                    SDXLEngine(
                        pipeline,
                        device=self.placement.device,
                        dtype=self.placement.dtype,
                        vram=self.placement.vram,
                        model_name=loaded,
                        refiners=self.library,
                        prompts=self.prompts,
                    ),
                    self.folders,
                )
            return self._engines[loaded]

    def _compile(self, pipeline: object) -> None:
        if not self.settings.compile:
            return
        if self.placement.vram is not VramMode.NORMAL:
            # Offload hooks move weights between devices around every call, which compiled graphs
            # would have to guard against: compiling gains nothing there.
            log.warning("FLEET_COMPILE is ignored in the %s VRAM mode", self.placement.vram)
            return
        # In place (`nn.Module.compile`), so the UNet stays the module LoRA and IP-Adapter loaders know.
        pipeline.unet.compile()  # type: ignore[attr-defined]

    def warm_up(self) -> float:
        """One short text-to-image job at the preset's default size, so that a compiled UNet is
        compiled (minutes) before the first job instead of during it; returns its seconds."""
        began = time.perf_counter()
        params = GenerationParams(
            prompt="warm-up", image_number=1, advanced_params=AdvancedParams(overwrite_step=WARM_UP_STEPS)
        )
        for _ in self.run(JobType.TEXT_TO_IMAGE, params, JobImages(ImageInputs()), [0], lambda _: None):
            pass
        return time.perf_counter() - began

    def _forget(self, name: str) -> None:
        # The library dropped this checkpoint: drop our engine on it too, or its memory stays held.
        jobs = self._engines.pop(name, None)
        if jobs is not None:
            jobs.release()

    def release(self) -> None:
        """Drop every loaded model (Fooocus-API's clean_vram); the next job loads them again. Logs the
        GPU memory in use before and after, so an operator sees what it gave back."""
        before = gpu_memory_in_use(self.placement.device)
        with self._lock:
            self.library.release()  # calls `_forget` for each checkpoint, adapters go with them
            self.vaes.release()
            self.prompts.release()
            self.censor.release()
        if before is not None:
            after = gpu_memory_in_use(self.placement.device)
            log.info("worker.released GPU memory: %.2f GiB in use, was %.2f GiB", after / GIB, before / GIB)

    def checkpoints(self) -> list[str]:
        return self.library.checkpoints()

    def warm(self) -> list[str]:
        """The checkpoints loaded now, which this worker takes jobs for first."""
        return self.library.warm_names()

    def loras(self) -> list[str]:
        return self.folders.names("loras")

    def scan(self) -> dict[str, list[str]]:
        """Rescan every model folder (folders are read on every call; nothing is cached)."""
        return self.folders.scan()

    def prepare(
        self, params: GenerationParams, inline: Sequence[LoraWeight] = ()
    ) -> tuple[GenerationParams, list[LoraWeight], list[str]]:
        """The parameters a job runs with, its LoRAs and notes for its metadata.

        The preset fills the fields left at the API default, then the performance mode forces its
        overrides. `inline` are the prompt's `<lora:name:weight>` tags. LoRAs left at the default list
        (the preset's, e.g. the offset LoRA) are skipped with a note when their file is missing, since
        the request did not ask for them; a LoRA the request names must exist.
        """
        defaulted = params.loras == type(params)().loras
        effective = effective_params(self.preset.apply(params))
        loras, notes = job_loras(effective, self.folders, inline, skip_missing=defaulted)
        return effective, loras, notes

    def run(
        self,
        job_type: JobType,
        params: GenerationParams,
        inputs: JobImages,
        seeds: list[int],
        on_step: OnStep,
    ) -> Iterator[GeneratedImage]:
        """Run a job on its checkpoint with its LoRAs; the images carry the record of the run."""
        # `<lora:name:weight>` tags of the prompt join the LoRA slots; the prompt engine drops the tags.
        _, inline_loras = extract_loras(params.prompt)
        effective, loras, notes = self.prepare(params, inline_loras)
        # Loaded before the diffusion, so a worker without the checker fails the job before spending on it.
        censor = self.censor.load() if effective.advanced_params.black_out_nsfw else None
        jobs = self.load(effective.base_model_name)
        loaded = self.library.loaded_name or effective.base_model_name
        if loaded not in (effective.base_model_name, f"{effective.base_model_name}.safetensors"):
            notes.append(f"checkpoint `{effective.base_model_name}` is not on this worker: used `{loaded}`")
        applied = self.adapters.apply(jobs.sdxl.pipeline, loras)
        extra = performance_lora(effective.performance_selection)
        user_loras = [lora for lora in loras if extra is None or lora[0] != extra[0]]
        jobs.sdxl.refiner_loras = partial(self._apply_refiner_loras, user_loras)
        vae = self._apply_vae(jobs, effective.advanced_params.vae_name, params, notes)
        record = RunRecord(
            params=effective,
            base_model=loaded,
            base_model_path=self.library.path(loaded),
            loras=tuple(applied),
            vae=vae,
            notes=tuple(notes),
            preset=self.preset.name,
        )
        pipeline = jobs.sdxl.pipeline
        # `embedding:name` becomes the embedding's token; the record keeps the prompt as written.
        encoded = effective.model_copy(
            update={
                "prompt": self.embeddings.prepare(pipeline, effective.prompt),
                "negative_prompt": self.embeddings.prepare(pipeline, effective.negative_prompt),
            }
        )
        images = jobs.run(job_type, encoded, inputs, seeds, on_step)
        if censor is not None:
            images = map(censor, images)
        return (RecordedImage(**_fields(g), record=record.for_image(g, self.library.path)) for g in images)

    def _apply_refiner_loras(self, loras: list[LoraWeight], unet: object) -> list[str]:
        notes: list[str] = []
        self.adapters.apply(unet, loras, required=False, notes=notes)
        return notes

    def _apply_vae(self, jobs: JobEngine, name: str, asked: GenerationParams, notes: list[str]) -> str:
        try:
            return self.vaes.apply(jobs.sdxl.pipeline, name, jobs.sdxl)
        except MissingModelError as error:
            if asked.advanced_params.vae_name != name:  # the preset's VAE, not asked for: run without
                notes.append(f"preset VAE left out: {error}")
                log.warning("%s", notes[-1])
                return self.vaes.apply(jobs.sdxl.pipeline, DEFAULT_VAE, jobs.sdxl)
            raise


def _fields(image: GeneratedImage) -> dict[str, object]:
    return {name: getattr(image, name) for name in GeneratedImage.__dataclass_fields__}


def load_engine(settings: WorkerSettings) -> tuple[WorkerEngine, list[str]]:
    """Return the loaded worker engine and the checkpoint names this worker has."""
    engine = WorkerEngine(settings)
    engine.load()
    if settings.compile:
        log.info("worker.compiled and warmed up in %.1f s", engine.warm_up())
    return engine, engine.checkpoints()
