"""What every job kind shares: one image's run (`ImageRun`) and one diffusion on a `from_pipe` sibling
of the loaded pipeline (`Diffuser`), with the job's ControlNets and IP-Adapters attached."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from diffusers import (
    ControlNetModel,
    StableDiffusionXLControlNetImg2ImgPipeline,
    StableDiffusionXLControlNetInpaintPipeline,
    StableDiffusionXLControlNetPipeline,
    StableDiffusionXLImg2ImgPipeline,
    StableDiffusionXLInpaintPipeline,
)
from PIL import Image

from worker.engine import controlnet as cn
from worker.engine import ip_adapter, upscaler
from worker.engine.folders import ModelFolders
from worker.engine.image_prompts import Controls, build_controls, ip_cutoff
from worker.engine.images import JobImages
from worker.engine.img2img import ShapeLimits
from worker.engine.latents import report_step
from worker.engine.runs import GeneratedImage, StepCallback
from worker.engine.schedulers import build_scheduler
from worker.engine.sdxl import SDXLEngine

if TYPE_CHECKING:
    from contracts.params import GenerationParams

log = logging.getLogger(__name__)


class _EmptyFloat32Notice(logging.Filter):
    """Drops diffusers' notice that a model has no float32-only modules (`[]`), logged on every
    dtype cast: `from_pipe` casts the shared components for every image job."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "should be kept in float32: []" not in record.getMessage()


logging.getLogger("diffusers.models.modeling_utils").addFilter(_EmptyFloat32Notice())


@dataclass(frozen=True)
class Task:
    """A diffusers task: its pipeline without and with ControlNets, and the ControlNet image's argument."""

    plain: type | None  # None: the loaded pipeline's own class
    controlled: type
    control_key: str


TEXT = Task(None, StableDiffusionXLControlNetPipeline, "image")
IMG2IMG = Task(StableDiffusionXLImg2ImgPipeline, StableDiffusionXLControlNetImg2ImgPipeline, "control_image")
INPAINT = Task(StableDiffusionXLInpaintPipeline, StableDiffusionXLControlNetInpaintPipeline, "control_image")


@dataclass(frozen=True)
class ImageRun:
    """One image of a job: its parameters, seed, place in the job, progress callback and image prompts."""

    params: GenerationParams
    seed: int
    index: int
    count: int
    on_step: StepCallback
    controls: Controls = field(default_factory=Controls)

    def with_params(self, params: GenerationParams) -> ImageRun:
        return replace(self, params=params)


def image_runs(
    params: GenerationParams, seeds: list[int], on_step: StepCallback, controls: Controls | None = None
) -> Iterator[ImageRun]:
    """One `ImageRun` per seed, in order."""
    for index, seed in enumerate(seeds):
        yield ImageRun(params, seed, index, len(seeds), on_step, controls or Controls())


class Diffuser:
    """Runs one diffusion per call on `sdxl`'s pipeline; models beyond the checkpoint come from `folders`."""

    def __init__(self, sdxl: SDXLEngine, folders: ModelFolders) -> None:
        self.sdxl = sdxl
        self.folders = folders
        self._controlnets: dict[str, ControlNetModel] = {}
        self._upscalers: dict[tuple[Path, float], upscaler.RRDBNet] = {}

    def release(self) -> None:
        """Drop the ControlNets and the upscaler (the library drops the pipeline)."""
        self._controlnets.clear()
        self._upscalers.clear()

    @property
    def limits(self) -> ShapeLimits:
        """Fooocus's shape ceilings at the checkpoint's native side (1024 px for SDXL)."""
        pipeline = self.sdxl.pipeline
        return ShapeLimits(int(pipeline.unet.config.sample_size) * int(pipeline.vae_scale_factor))

    def super_resolve(self, image: Image.Image) -> Image.Image:
        """`image` through the super-resolution model (its own scale); `image` itself when there is none,
        so that the Lanczos resize after it does all the upscaling."""
        folder = self.folders.folder("upscale_models")
        path = upscaler.find_upscaler(folder)
        if path is None:
            log.warning(
                "no super-resolution model in `%s` (Fooocus's is `%s`): upscaling with Lanczos only",
                folder,
                upscaler.FOOOCUS_UPSCALER,
            )
            return image
        key = (path, path.stat().st_mtime)
        if key not in self._upscalers:
            self._upscalers = {key: upscaler.load_upscaler(path, self.sdxl.device, self.sdxl.dtype)}
            log.info("super-resolution model %s loaded", path.name)
        return upscaler.super_resolve(self._upscalers[key], image)

    def check_seeds(self, params: GenerationParams, seeds: list[int]) -> None:
        # Size checks do not apply: image jobs take their size from the input image.
        unsized = params.advanced_params.model_copy(update={"overwrite_width": -1, "overwrite_height": -1})
        self.sdxl.check_inputs(
            params.model_copy(update={"aspect_ratios_selection": "64*64", "advanced_params": unsized}), seeds
        )

    def controls(self, params: GenerationParams, inputs: JobImages, size: tuple[int, int]) -> Controls:
        """Preprocess each image-prompt slot and load its model; a missing model file fails the job."""
        return build_controls(params, inputs, size, self._controlnet, self.folders)

    def text_to_image(self, run: ImageRun) -> Image.Image:
        """Text-to-image of `run.params.size` with the run's image prompts."""
        self.sdxl.check_inputs(run.params, [run.seed])
        width, height = run.params.size
        latents, _ = self.sdxl.initial_latents(run.seed, width, height)
        return self.diffuse(TEXT, run, width=width, height=height, latents=latents)

    def diffuse(self, task: Task, run: ImageRun, **call_args: Any) -> Image.Image:
        """One diffusion of `task` for `run`; `call_args` are the task's own pipeline arguments."""
        controls = run.controls
        pipeline = self._pipeline(task, controls)
        if controls.ip_slots:
            ip_adapter.attach(pipeline, self.folders, controls.ip_slots, self.sdxl.device, self.sdxl.dtype)
        try:
            advanced = run.params.advanced_params
            choice = build_scheduler(
                self.sdxl.scheduler_config, advanced.sampler_name, advanced.scheduler_name, seed=run.seed
            )
            report = partial(report_step, run.on_step, run.index, run.count)
            callback = ip_cutoff(report, controls) if controls.ip_slots else report
            generator = torch.Generator("cpu").manual_seed(run.seed)
            return self.sdxl.run_pipeline(
                pipeline,
                run.params,
                choice,
                callback,
                generator,
                image_index=run.index,
                **call_args,
                **controls.call_args(task.control_key),
            )
        finally:
            if controls.ip_slots:
                ip_adapter.detach(pipeline, self.sdxl.device, self.sdxl.dtype)

    def generated(self, run: ImageRun, image: Image.Image) -> GeneratedImage:
        """`run`'s finished image, with what its last diffusion used (nothing for a plain resize)."""
        return GeneratedImage.of_run(run.index, run.seed, image, self.sdxl.last_run)

    def _pipeline(self, task: Task, controls: Controls) -> Any:
        """A `from_pipe` sibling of the loaded pipeline (shared weights), with the job's ControlNets."""
        if controls.controlnets:
            cls: type = task.controlled
            extra = {"controlnet": controls.controlnet}
        else:
            cls, extra = task.plain or type(self.sdxl.pipeline), {}
        # `from_pipe` casts the shared components to its `dtype`, float32 unless told: name the engine's.
        pipeline = cls.from_pipe(self.sdxl.pipeline, dtype=self.sdxl.dtype, **extra)  # type: ignore[attr-defined]
        self.sdxl.restore_vae_dtype(pipeline)
        pipeline.set_progress_bar_config(disable=True)
        return pipeline

    def _controlnet(self, cn_type: str) -> ControlNetModel:
        if cn_type not in self._controlnets:
            path = cn.controlnet_path(self.folders, cn_type)
            self.folders.require(f"a {cn_type} image prompt", path)
            self._controlnets[cn_type] = cn.load_controlnet(
                path, self.sdxl.pipeline.unet, self.sdxl.device, self.sdxl.dtype
            )
        return self._controlnets[cn_type]
