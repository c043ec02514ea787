"""Every Fooocus-API job kind on one SDXL engine: text-to-image, upscale/vary, inpaint/outpaint, image
prompts (ControlNet, IP-Adapter), enhance.

Usage:

    jobs = JobEngine(SDXLEngine(pipeline), ModelFolders(models_dir))
    for generated in jobs.upscale_or_vary(params, JobImages(job.inputs, images), seeds, on_step):
        store(generated.image)

Each entry yields `GeneratedImage`s one at a time and calls `on_step` after every denoising step, like
`SDXLEngine.text_to_image`, so progress, previews and stops work for every kind. Img2img and inpaint
are `from_pipe` siblings of the loaded pipeline: they share its UNet, VAE and text encoders.
Straightforward diffusers semantics; Fooocus's finer ones (§5–§7: shape ceilings, crop boxes, its
inpaint patch, concatenated IP attention, noise-level stops, softness) are not reproduced yet.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
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

from contracts import JobType, MaskOptions
from worker.engine import controlnet as cn
from worker.engine import ip_adapter
from worker.engine.folders import ModelFolders
from worker.engine.image_prompts import Controls, build_controls, ip_cutoff
from worker.engine.images import (
    JobImages,
    binary_mask,
    erode_or_dilate,
    fill_for_inpaint,
    fit_to_latents,
    mask_image,
    paste_outside_mask,
    round_to,
    shape_ceil,
)
from worker.engine.img2img import (
    DIRECT_SR_CEIL,
    UPSCALE_DENOISE,
    VARY_DENOISE,
    denoise_schedule,
    resized,
    uov_source,
    upscale_factor,
)
from worker.engine.inpaint import inpaint_canvas, inpaint_prompt
from worker.engine.masks import generate_mask
from worker.engine.schedulers import build_scheduler
from worker.engine.sdxl import GeneratedImage, SDXLEngine, StepCallback

__all__ = ["JobEngine", "JobImages", "denoise_schedule", "upscale_factor"]

if TYPE_CHECKING:
    from contracts.inputs import EnhanceTab, ImageInputs
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

    @property
    def device(self) -> torch.device:
        return self.sdxl.device

    def release(self) -> None:
        """Drop the ControlNets built on this engine's UNet (the library drops the pipeline)."""
        self._controlnets.clear()

    # ----- entries -------------------------------------------------------------------------------

    def run(
        self,
        job_type: JobType,
        params: GenerationParams,
        inputs: JobImages,
        seeds: list[int],
        on_step: StepCallback,
    ) -> Iterator[GeneratedImage]:
        """The entry for a job's kind. Text-to-image with image inputs runs as an image prompt."""
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
        """Vary (Subtle/Strong), Upscale (1.5x/2x/Custom) by img2img; Upscale (Fast 2x) resizes only."""
        image = inputs.image(inputs.spec.input_image_key, "an input image (`input_image`)")
        method = inputs.spec.uov_method.value
        if method == "Disabled":
            raise ValueError("`uov_method` is Disabled: there is nothing to upscale or vary")
        self._check_seeds(params, seeds)
        return self._uov_images(params, image, method, inputs.spec.upscale_value, seeds, on_step)

    def inpaint_or_outpaint(
        self, params: GenerationParams, inputs: JobImages, seeds: list[int], on_step: StepCallback
    ) -> Iterator[GeneratedImage]:
        """Inpaint the masked area and/or outpaint the chosen sides; neither → plain text-to-image."""
        return self.image_prompt(params, inputs, seeds, on_step)

    def image_prompt(
        self, params: GenerationParams, inputs: JobImages, seeds: list[int], on_step: StepCallback
    ) -> Iterator[GeneratedImage]:
        """Image prompts (ControlNets, IP-Adapters) on text-to-image, img2img (uov) or inpaint."""
        spec = inputs.spec
        self._check_seeds(params, seeds)
        canvas = inpaint_canvas(params, inputs)
        method = spec.uov_method.value
        if canvas is None and spec.input_image_key and method != "Disabled":
            # Fast 2x has no diffusion for an image prompt to steer.
            if not spec.image_prompts or method == "Upscale (Fast 2x)":
                return self.upscale_or_vary(params, inputs, seeds, on_step)
            image = inputs.image(spec.input_image_key, "an input image")
            source = self._uov_source(image, method, spec.upscale_value)
            controls = self._controls(params, inputs, source.size)
            return self._uov_images(params, image, method, spec.upscale_value, seeds, on_step, controls)
        size = canvas[0].size if canvas is not None else params.size
        controls = self._controls(params, inputs, (round_to(size[0]), round_to(size[1])))
        if canvas is None and not controls.controlnets and not controls.ip_slots:
            return self.sdxl.text_to_image(params, seeds, on_step)
        return self._generate(params, seeds, on_step, canvas, controls, spec.inpaint_additional_prompt)

    def enhance(
        self, params: GenerationParams, inputs: JobImages, seeds: list[int], on_step: StepCallback
    ) -> Iterator[GeneratedImage]:
        """Optional upscale/vary before or after, and one masked inpaint per enhance tab."""
        image = inputs.image(inputs.spec.enhance_input_key, "an image to enhance (`enhance_input_image`)")
        self._check_seeds(params, seeds)
        return self._enhanced(params, inputs.spec, image, seeds, on_step)

    # ----- shared parts --------------------------------------------------------------------------

    def _check_seeds(self, params: GenerationParams, seeds: list[int]) -> None:
        # Size checks do not apply: image jobs take their size from the input image.
        unsized = params.advanced_params.model_copy(update={"overwrite_width": -1, "overwrite_height": -1})
        self.sdxl.check_inputs(
            params.model_copy(update={"aspect_ratios_selection": "64*64", "advanced_params": unsized}), seeds
        )

    def _diffuse(
        self,
        pipeline: Any,
        params: GenerationParams,
        seed: int,
        index: int,
        count: int,
        on_step: StepCallback,
        controls: Controls | None = None,
        **call_args: Any,
    ) -> Image.Image:
        choice = build_scheduler(
            self.sdxl._scheduler_config,
            params.advanced_params.sampler_name,
            params.advanced_params.scheduler_name,
            seed=seed,
        )
        report = partial(SDXLEngine._report, on_step, index, count)
        callback = report if controls is None or not controls.ip_slots else ip_cutoff(report, controls)
        generator = torch.Generator("cpu").manual_seed(seed)
        return self.sdxl.run_pipeline(
            pipeline, params, choice, callback, generator, image_index=index, **call_args
        )

    # ----- upscale / vary ------------------------------------------------------------------------

    def _uov_images(
        self,
        params: GenerationParams,
        image: Image.Image,
        method: str,
        upscale_value: float | None,
        seeds: list[int],
        on_step: StepCallback,
        controls: Controls | None = None,
    ) -> Iterator[GeneratedImage]:
        if method == "Upscale (Fast 2x)":
            # No diffusion and no prompt: one image, whatever image_number says.
            yield GeneratedImage(0, seeds[0], resized(image, 2.0))
            return
        for index, seed in enumerate(seeds):
            out = self._uov_one(
                params, image, method, upscale_value, seed, index, len(seeds), on_step, controls
            )
            yield GeneratedImage(index, seed, out)

    def _uov_one(
        self,
        params: GenerationParams,
        image: Image.Image,
        method: str,
        upscale_value: float | None,
        seed: int,
        index: int,
        count: int,
        on_step: StepCallback,
        controls: Controls | None = None,
    ) -> Image.Image:
        advanced = params.advanced_params
        source = self._uov_source(image, method, upscale_value)
        if method.startswith("Vary"):
            override = advanced.overwrite_vary_strength
            denoise = override if override > 0 else VARY_DENOISE[method]
            steps = params.steps
        else:
            if shape_ceil(*source.size) > DIRECT_SR_CEIL:
                return source
            override = advanced.overwrite_upscale_strength
            denoise = override if override > 0 else UPSCALE_DENOISE
            overwrite_step = advanced.overwrite_step
            steps = overwrite_step if overwrite_step > 0 else params.performance_selection.upscale_steps
        schedule = denoise_schedule(steps, denoise)
        if schedule is None:
            return source
        total, strength = schedule
        controls = controls or Controls()
        cls = (
            StableDiffusionXLControlNetImg2ImgPipeline
            if controls.controlnets
            else StableDiffusionXLImg2ImgPipeline
        )
        return self._run_with_controls(
            self._pipeline(cls, controls),
            params,
            seed,
            index,
            count,
            on_step,
            controls,
            "control_image",
            image=source,
            strength=strength,
            num_inference_steps=total,
        )

    def _uov_source(self, image: Image.Image, method: str, upscale_value: float | None) -> Image.Image:
        """The image img2img starts from: the input at latent-friendly size, or its upscale."""
        upscalers = [] if method.startswith("Vary") else self.folders.names("upscale_models")
        if upscalers:
            log.warning(
                "super-resolution models are not run yet (found %s): upscaling with Lanczos", upscalers
            )
        return uov_source(image, method, upscale_value)

    # ----- inpaint / outpaint --------------------------------------------------------------------

    def _inpaint_one(
        self,
        params: GenerationParams,
        canvas: Image.Image,
        mask: np.ndarray,
        strength: float,
        prompt: str,
        seed: int,
        index: int,
        count: int,
        on_step: StepCallback,
        controls: Controls | None = None,
    ) -> Image.Image:
        schedule = denoise_schedule(params.steps, strength)
        if schedule is None:
            return canvas
        total, strength = schedule
        work = fit_to_latents(fill_for_inpaint(canvas, mask) if strength > 0.99 else canvas)
        work_mask = mask_image(mask).resize(work.size, Image.Resampling.NEAREST)
        controls = controls or Controls()
        pipeline = self._pipeline(
            StableDiffusionXLControlNetInpaintPipeline
            if controls.controlnets
            else StableDiffusionXLInpaintPipeline,
            controls,
        )
        out = self._run_with_controls(
            pipeline,
            params,
            seed,
            index,
            count,
            on_step,
            controls,
            "control_image",
            prompt=prompt,
            image=work,
            mask_image=work_mask,
            width=work.width,
            height=work.height,
            strength=strength,
            num_inference_steps=total,
        )
        return paste_outside_mask(canvas, out, mask)

    # ----- image prompts -------------------------------------------------------------------------

    def _controls(self, params: GenerationParams, inputs: JobImages, size: tuple[int, int]) -> Controls:
        """Preprocess each slot and load its model; a missing model file fails the job, naming it."""
        return build_controls(params, inputs, size, self._controlnet, self.folders)

    def _controlnet(self, cn_type: str) -> ControlNetModel:
        if cn_type not in self._controlnets:
            path = cn.controlnet_path(self.folders, cn_type)
            self.folders.require(f"a {cn_type} image prompt", path)
            self._controlnets[cn_type] = cn.load_controlnet(
                path, self.sdxl.pipeline.unet, self.sdxl.device, self.sdxl.dtype
            )
        return self._controlnets[cn_type]

    def _pipeline(self, cls: type, controls: Controls | None = None) -> Any:
        """A `from_pipe` sibling of the loaded pipeline (shared weights), with the job's ControlNets."""
        extra = {"controlnet": controls.controlnet} if controls is not None and controls.controlnets else {}
        # `from_pipe` casts the shared components to its `dtype`, float32 unless told: name the engine's.
        pipeline = cls.from_pipe(self.sdxl.pipeline, dtype=self.sdxl.dtype, **extra)
        self.sdxl.restore_vae_dtype(pipeline)
        pipeline.set_progress_bar_config(disable=True)
        return pipeline

    def _run_with_controls(
        self,
        pipeline: Any,
        params: GenerationParams,
        seed: int,
        index: int,
        count: int,
        on_step: StepCallback,
        controls: Controls,
        control_key: str,
        **call_args: Any,
    ) -> Image.Image:
        if controls.ip_slots:
            ip_adapter.attach(pipeline, self.folders, controls.ip_slots, self.sdxl.device, self.sdxl.dtype)
        try:
            return self._diffuse(
                pipeline,
                params,
                seed,
                index,
                count,
                on_step,
                controls,
                **call_args,
                **controls.call_args(control_key),
            )
        finally:
            if controls.ip_slots:
                ip_adapter.detach(pipeline, self.sdxl.device, self.sdxl.dtype)

    def _generate(
        self,
        params: GenerationParams,
        seeds: list[int],
        on_step: StepCallback,
        canvas: tuple[Image.Image, np.ndarray, bool] | None,
        controls: Controls,
        additional_prompt: str,
    ) -> Iterator[GeneratedImage]:
        for index, seed in enumerate(seeds):
            if canvas is not None:
                image, mask, outpainted = canvas
                # Outpaint always repaints fully (Fooocus forces strength 1.0).
                strength = 1.0 if outpainted else params.advanced_params.inpaint_strength
                prompt = inpaint_prompt(params, additional_prompt)
                out = self._inpaint_one(
                    params, image, mask, strength, prompt, seed, index, len(seeds), on_step, controls
                )
            else:
                out = self._text_with_controls(params, seed, index, len(seeds), on_step, controls)
            yield GeneratedImage(index, seed, out)

    def _text_with_controls(
        self,
        params: GenerationParams,
        seed: int,
        index: int,
        count: int,
        on_step: StepCallback,
        controls: Controls,
    ) -> Image.Image:
        self.sdxl.check_inputs(params, [seed])
        width, height = params.size
        latents, _ = self.sdxl._initial_latents(seed, width, height)
        cls = StableDiffusionXLControlNetPipeline if controls.controlnets else type(self.sdxl.pipeline)
        pipeline = self._pipeline(cls, controls)
        return self._run_with_controls(
            pipeline,
            params,
            seed,
            index,
            count,
            on_step,
            controls,
            "image",
            width=width,
            height=height,
            latents=latents,
        )

    # ----- enhance -------------------------------------------------------------------------------

    def _enhanced(
        self,
        params: GenerationParams,
        spec: ImageInputs,
        image: Image.Image,
        seeds: list[int],
        on_step: StepCallback,
    ) -> Iterator[GeneratedImage]:
        method = spec.enhance_uov_method.value
        before = spec.enhance_uov_processing_order == "Before First Enhancement"
        for index, seed in enumerate(seeds):
            current = image.convert("RGB")
            if method != "Disabled" and before:
                current = self._uov_once(params, current, method, seed, index, len(seeds), on_step)
            for tab in spec.enhance_tabs:
                current = self._enhance_tab(params, tab, current, seed, index, len(seeds), on_step)
            if method != "Disabled" and not before:
                current = self._uov_once(params, current, method, seed, index, len(seeds), on_step)
            yield GeneratedImage(index, seed, current)

    def _uov_once(
        self,
        params: GenerationParams,
        image: Image.Image,
        method: str,
        seed: int,
        index: int,
        count: int,
        on_step: StepCallback,
    ) -> Image.Image:
        if method == "Upscale (Fast 2x)":
            return resized(image, 2.0)
        return self._uov_one(params, image, method, None, seed, index, count, on_step)

    def _enhance_tab(
        self,
        params: GenerationParams,
        tab: EnhanceTab,
        image: Image.Image,
        seed: int,
        index: int,
        count: int,
        on_step: StepCallback,
    ) -> Image.Image:
        request = MaskOptions(
            mask_model=tab.enhance_mask_model,
            dino_prompt_text=tab.enhance_mask_dino_prompt,
            cloth_category=tab.enhance_mask_cloth_category,
            sam_model=tab.enhance_mask_sam_model,
            box_threshold=tab.enhance_mask_box_threshold,
            text_threshold=tab.enhance_mask_text_threshold,
            sam_max_detections=tab.enhance_mask_sam_max_detections,
        )
        mask = binary_mask(generate_mask(self.folders, image, request), image.size)
        mask = erode_or_dilate(mask, tab.enhance_inpaint_erode_or_dilate)
        if tab.enhance_mask_invert:
            mask = ~mask
        if not mask.any():
            return image  # nothing detected: the tab leaves the image as it is
        tab_params = params.model_copy(
            update={
                "prompt": tab.enhance_prompt or params.prompt,
                "negative_prompt": tab.enhance_negative_prompt or params.negative_prompt,
            }
        )
        return self._inpaint_one(
            tab_params,
            image,
            mask,
            tab.enhance_inpaint_strength,
            tab_params.prompt,
            seed,
            index,
            count,
            on_step,
        )
