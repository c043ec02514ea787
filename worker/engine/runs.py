"""What a diffusion hands back: each step's progress, what the run actually used, and the finished image
with it (for the job's metadata). Plain values, shared by the engine and everything that runs jobs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

from worker.engine.refiner import NO_REFINER


@dataclass(frozen=True, slots=True)
class StepInfo:
    """Progress of one denoising step, handed to the step callback."""

    image_index: int  # 0-based position of the image in this job
    image_count: int
    step: int  # 1-based: steps finished for this image, `total_steps` at the last one
    total_steps: int  # denoising iterations (second-order samplers such as heun run 2n-1)
    preview: Callable[[], bytes]  # PNG of the current latents (1/4 size, bounded); made only if called


StepCallback = Callable[[StepInfo], None]


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What one diffusion actually used, for the job's metadata."""

    sampler_name: str  # the Fooocus names actually used (see `schedulers.build_scheduler`)
    scheduler_name: str
    refiner_model_name: str = NO_REFINER  # the refiner that ran, after every fallback
    refiner_swap_method: str = ""
    notes: tuple[str, ...] = ()  # every way the run departs from the request
    unet_calls: tuple[str, ...] = ()  # "base" or "refiner", per UNet call
    prompt_metadata: dict[str, object] | None = None  # `PromptPlan.metadata()`: full prompts, expansion


@dataclass(frozen=True, slots=True)
class GeneratedImage:
    """One finished image of a job."""

    index: int
    seed: int
    image: Image.Image
    sampler_name: str = ""  # the Fooocus names actually used (see `schedulers.build_scheduler`)
    scheduler_name: str = ""
    refiner_model_name: str = NO_REFINER
    refiner_swap_method: str = ""
    notes: tuple[str, ...] = ()
    prompt_metadata: dict[str, object] | None = None  # `PromptPlan.metadata()`: full prompts, expansion

    @classmethod
    def of_run(cls, index: int, seed: int, image: Image.Image, run: RunInfo | None) -> GeneratedImage:
        """An image with what its diffusion used; `run` None: no diffusion made it (a plain resize)."""
        if run is None:
            return cls(index, seed, image)
        return cls(
            index,
            seed,
            image,
            run.sampler_name,
            run.scheduler_name,
            run.refiner_model_name,
            run.refiner_swap_method,
            run.notes,
            run.prompt_metadata,
        )
