"""`JobEngine`: turns a job into diffusion runs on one checkpoint. Its entries, one per job kind, are
dispatched on the job's type (`run`); the kinds' steps live in `uov`, `inpaint`, `image_prompts` and
`enhance`, each a few functions over this engine and one `ImageRun` per image. Every diffusion is one
`diffuse` call on a `from_pipe` sibling of the loaded pipeline (shared weights), with the job's
ControlNets and IP-Adapters attached; the `SDXLEngine` below runs it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from diffusers import ControlNetModel
from PIL import Image

from contracts import JobType
from worker.engine import controlnet as cn
from worker.engine import ip_adapter, upscaler
from worker.engine.folders import ModelFolders
from worker.engine.image_prompts import Controls, build_controls, ip_cutoff
from worker.engine.images import JobImages
from worker.engine.img2img import ShapeLimits
from worker.engine.jobs.enhance import enhance as enhance_job
from worker.engine.jobs.image_prompts import image_prompt as image_prompt_job
from worker.engine.jobs.tasks import TEXT, ImageRun, Task
from worker.engine.jobs.uov import upscale_or_vary as upscale_or_vary_job
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


class JobEngine:
    """Runs every job kind on one `SDXLEngine`; models beyond the checkpoint come from `folders`."""

    def __init__(self, sdxl: SDXLEngine, folders: ModelFolders) -> None:
        self.sdxl = sdxl
        self.folders = folders
        self._controlnets: dict[str, ControlNetModel] = {}
        self._upscalers: dict[tuple[Path, float], upscaler.RRDBNet] = {}
        self.ip_weights = ip_adapter.IpWeights()

    @property
    def device(self) -> torch.device:
        return self.sdxl.device

    def release(self) -> None:
        """Drop the ControlNets, the upscaler and the IP-Adapter weights of this engine (the library drops
        the pipeline)."""
        self._controlnets.clear()
        self._upscalers.clear()
        self.ip_weights.release()

    def run(
        self,
        job_type: JobType,
        params: GenerationParams,
        inputs: JobImages,
        seeds: list[int],
        on_step: StepCallback,
    ) -> Iterator[GeneratedImage]:
        """The entry for a job's kind. Text-to-image with image inputs runs as an image prompt."""
        self.sdxl.last_run = None  # a job without diffusion (Fast 2x) must not report the last job's run
        if job_type is JobType.TEXT_TO_IMAGE and not inputs.images:
            return self.text_to_image(params, seeds, on_step)
        entries = {
            JobType.UPSCALE_VARY: self.upscale_or_vary,
            JobType.INPAINT_OUTPAINT: self.inpaint_or_outpaint,
            JobType.IMAGE_PROMPT: self.image_prompt,
            JobType.ENHANCE: self.enhance,
            JobType.TEXT_TO_IMAGE: self.image_prompt,
        }
        return entries[job_type](params, inputs, seeds, on_step)

    def text_to_image(
        self, params: GenerationParams, seeds: list[int], on_step: StepCallback
    ) -> Iterator[GeneratedImage]:
        return self.sdxl.text_to_image(params, seeds, on_step)

    def upscale_or_vary(
        self, params: GenerationParams, inputs: JobImages, seeds: list[int], on_step: StepCallback
    ) -> Iterator[GeneratedImage]:
        """Vary (Subtle/Strong), Upscale (1.5x/2x/Custom) by img2img; Upscale (Fast 2x) upscales only."""
        return upscale_or_vary_job(self, params, inputs, seeds, on_step)

    def inpaint_or_outpaint(
        self, params: GenerationParams, inputs: JobImages, seeds: list[int], on_step: StepCallback
    ) -> Iterator[GeneratedImage]:
        """Inpaint the masked area and/or outpaint the chosen sides; neither → plain text-to-image."""
        return image_prompt_job(self, params, inputs, seeds, on_step)

    def image_prompt(
        self, params: GenerationParams, inputs: JobImages, seeds: list[int], on_step: StepCallback
    ) -> Iterator[GeneratedImage]:
        """Image prompts (ControlNets, IP-Adapters) on text-to-image, img2img (uov) or inpaint."""
        return image_prompt_job(self, params, inputs, seeds, on_step)

    def enhance(
        self, params: GenerationParams, inputs: JobImages, seeds: list[int], on_step: StepCallback
    ) -> Iterator[GeneratedImage]:
        """Optional upscale/vary before or after, and one masked inpaint per enhance tab."""
        return enhance_job(self, params, inputs, seeds, on_step)

    # ---- the diffusion step the kinds share ----

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

    def diffuse_text(self, run: ImageRun) -> Image.Image:
        """One image of text-to-image at `run.params.size`, with the run's image prompts."""
        self.sdxl.check_inputs(run.params, [run.seed])
        width, height = run.params.size
        latents, _ = self.sdxl.initial_latents(run.seed, width, height)
        return self.diffuse(TEXT, run, width=width, height=height, latents=latents)

    def diffuse(self, task: Task, run: ImageRun, **call_args: Any) -> Image.Image:
        """One diffusion of `task` for `run`; `call_args` are the task's own pipeline arguments."""
        controls = run.controls
        pipeline = self._pipeline(task, controls)
        if controls.ip_slots:
            ip_adapter.attach(
                pipeline, self.folders, controls.ip_slots, self.sdxl.device, self.sdxl.dtype, self.ip_weights
            )
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
