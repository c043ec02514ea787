"""`JobEngine`: the entry of each job kind, dispatched on the job's type."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch

from contracts import JobType
from worker.engine.folders import ModelFolders
from worker.engine.images import JobImages
from worker.engine.jobs.diffusion import Diffuser
from worker.engine.jobs.enhance import enhance as enhance_job
from worker.engine.jobs.image_prompts import image_prompt as image_prompt_job
from worker.engine.jobs.uov import upscale_or_vary as upscale_or_vary_job
from worker.engine.runs import GeneratedImage, StepCallback
from worker.engine.sdxl import SDXLEngine

if TYPE_CHECKING:
    from contracts.params import GenerationParams


class JobEngine:
    """Runs every job kind on one `SDXLEngine`; models beyond the checkpoint come from `folders`."""

    def __init__(self, sdxl: SDXLEngine, folders: ModelFolders) -> None:
        self.sdxl = sdxl
        self.folders = folders
        self.diffuser = Diffuser(sdxl, folders)

    @property
    def device(self) -> torch.device:
        return self.sdxl.device

    def release(self) -> None:
        """Drop the models built on this engine's UNet (the library drops the pipeline)."""
        self.diffuser.release()

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
        return upscale_or_vary_job(self.diffuser, params, inputs, seeds, on_step)

    def inpaint_or_outpaint(
        self, params: GenerationParams, inputs: JobImages, seeds: list[int], on_step: StepCallback
    ) -> Iterator[GeneratedImage]:
        """Inpaint the masked area and/or outpaint the chosen sides; neither → plain text-to-image."""
        return image_prompt_job(self.diffuser, params, inputs, seeds, on_step)

    def image_prompt(
        self, params: GenerationParams, inputs: JobImages, seeds: list[int], on_step: StepCallback
    ) -> Iterator[GeneratedImage]:
        """Image prompts (ControlNets, IP-Adapters) on text-to-image, img2img (uov) or inpaint."""
        return image_prompt_job(self.diffuser, params, inputs, seeds, on_step)

    def enhance(
        self, params: GenerationParams, inputs: JobImages, seeds: list[int], on_step: StepCallback
    ) -> Iterator[GeneratedImage]:
        """Optional upscale/vary before or after, and one masked inpaint per enhance tab."""
        return enhance_job(self.diffuser, params, inputs, seeds, on_step)
