"""What every job kind shares: the diffusers task an image runs as (its pipelines without and with
ControlNets) and one image's run (`ImageRun`): its parameters, seed, place in the job and image prompts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from diffusers import (
    StableDiffusionXLControlNetImg2ImgPipeline,
    StableDiffusionXLControlNetInpaintPipeline,
    StableDiffusionXLControlNetPipeline,
    StableDiffusionXLImg2ImgPipeline,
    StableDiffusionXLInpaintPipeline,
)

from worker.engine.image_prompts import Controls
from worker.engine.runs import StepCallback

if TYPE_CHECKING:
    from contracts.params import GenerationParams


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
