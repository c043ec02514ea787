"""SDXL text-to-image on a loaded diffusers pipeline, one diffusion per seed, as Fooocus runs it.

Usage:

    library = ModelLibrary(models_dir, cache_dir)
    engine = SDXLEngine(library.load(name), device="cuda", dtype=torch.float16, refiners=library)
    for generated in engine.text_to_image(params, params.seeds(), on_step=report):
        store(generated.image)

What this engine reproduces of Fooocus (fooocus-engine.md): batch 1 per image, initial noise from a
CPU float32 generator seeded with the image seed, the sampler/scheduler names, and the prompt side
(`worker.engine.prompts`: styles, wildcards, arrays, the Fooocus V2 expansion, CLIP skip, weights and the
multi-workload encoding, an empty negative encoded as ""). Every diffusion, text-to-image or image job, runs
through `run_pipeline`, which adds Fooocus's guidance (sharpness, adaptive CFG, ADM scaling, FreeU;
`worker.engine.guidance`) and its refiner (`worker.engine.refiner`). The sampler's own noise comes
from the same CPU generator, so a seed gives the same picture on CPU and GPU at the same dtype
(within 1/255 on an H100); ancestral samplers draw that noise in the model dtype, so float16 and
float32 differ for them. What a diffusion actually used (names after fallbacks, the refiner, notes
on anything approximated, the prompts encoded) is `GeneratedImage`'s fields and `SDXLEngine.last_run`.
Not here: LoRAs (`worker.engine.loras`), image inputs (`worker.engine.jobs`). The refiner's LoRAs come in
through `refiner_loras`, a hook the worker sets before each job: the engine calls it with the refiner UNet
before the refiner phase; it makes the job's user LoRAs that UNet's adapters and returns notes on the ones
skipped, which join the run's notes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

import torch
from diffusers import StableDiffusionXLPipeline
from PIL import Image

from worker.engine.guidance import GuidanceSettings
from worker.engine.latents import decode_latents, initial_noise, report_step
from worker.engine.prompts import PromptEngine, PromptPlan
from worker.engine.refiner import (
    NO_REFINER,
    RefinerPlan,
    is_separable,
    joint_route,
    plan_refiner,
    run_joint,
    run_separate,
)
from worker.engine.runs import GeneratedImage, RunInfo, StepCallback
from worker.engine.schedulers import SamplingChoice, build_scheduler
from worker.engine.vram import VramMode, place_module, place_pipeline

if TYPE_CHECKING:  # only read through its attributes: the engine runs without pydantic at import
    from contracts.params import GenerationParams

MAX_SEED_EXCLUSIVE = 2**64  # torch.Generator.manual_seed takes any unsigned 64-bit value


RefinerLoras = Callable[[Any], list[str]]
"""Refiner UNet → notes: makes the job's LoRAs its adapters (see the module docstring)."""


class RefinerSource(Protocol):
    """Where refiner UNets come from (a `ModelLibrary`)."""

    def find(self, name: str) -> str | None: ...

    def load_refiner_unet(self, name: str) -> Any: ...


class SDXLEngine:
    """Runs text-to-image jobs on one SDXL pipeline; explicit device and dtype, CPU/float32 by default."""

    def __init__(
        self,
        pipeline: StableDiffusionXLPipeline,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        vram: VramMode = VramMode.NORMAL,
        model_name: str = "",
        refiners: RefinerSource | None = None,
        prompts: PromptEngine | None = None,
    ) -> None:
        self.device = torch.device(device)
        # Styles, wildcards and the expansion model; without a models folder, the built-in styles only.
        self.prompts = prompts if prompts is not None else PromptEngine(device=self.device)
        self.last_prompt_plan: PromptPlan | None = None  # of the latest `run_pipeline` (one job at a time)
        self.dtype = dtype
        self.model_name = model_name
        self.refiners = refiners
        self.last_run: RunInfo | None = None
        """What the latest `run_pipeline` call used."""
        self.refiner_loras: RefinerLoras | None = None
        """Set per job by the worker (one job at a time); None: the refiner runs as loaded."""
        self.vram = vram
        self.pipeline = place_pipeline(pipeline, vram, self.device, dtype)
        self.pipeline.set_progress_bar_config(disable=True)
        # SDXL's VAE overflows in float16 (`force_upcast`). The pipeline would cast it to float32 and
        # back for every image; we keep it in float32 once and decode ourselves (see `_decode`).
        self.restore_vae_dtype(self.pipeline)
        # Every job builds its scheduler from the checkpoint's own config, never from the last job's.
        self.scheduler_config = dict(pipeline.scheduler.config)

    def check_inputs(self, params: GenerationParams, seeds: list[int]) -> None:
        """Raise `ValueError` naming the first argument the pipeline cannot run with."""
        width, height = params.size
        factor = self.pipeline.vae_scale_factor
        for name, value in (("width", width), ("height", height)):
            if value <= 0 or value % factor:
                raise ValueError(f"`{name}` must be a positive multiple of {factor}, got {value}")
        if params.steps < 1:
            raise ValueError(f"`steps` must be at least 1, got {params.steps}")
        if not seeds:
            raise ValueError("`seeds` must hold one seed per image, got none")
        for seed in seeds:
            if not 0 <= seed < MAX_SEED_EXCLUSIVE:
                raise ValueError(f"`seeds` must be in [0, 2**64), got {seed}")

    def text_to_image(
        self, params: GenerationParams, seeds: list[int], on_step: StepCallback
    ) -> Iterator[GeneratedImage]:
        """Generate one image per seed, yielding each as soon as it is decoded.

        Args:
            params (`GenerationParams`): prompt, negative prompt, size, steps, guidance scale,
                sampler and scheduler names, CLIP skip.
            seeds (`list[int]`): one seed per image, usually `params.seeds()`.
            on_step (`StepCallback`): called after every denoising step. An exception it raises
                (e.g. a cancellation) stops the diffusion at once and propagates to the caller.

        Inputs are checked here, before the first image starts, not when iteration begins.
        """
        self.check_inputs(params, seeds)
        return self._generate(params, list(seeds), on_step)

    def _generate(
        self, params: GenerationParams, seeds: list[int], on_step: StepCallback
    ) -> Iterator[GeneratedImage]:
        for index, seed in enumerate(seeds):
            choice = build_scheduler(
                self.scheduler_config,
                params.advanced_params.sampler_name,
                params.advanced_params.scheduler_name,
                seed=seed,
            )
            image = self._diffuse(
                params, seed, index, choice, partial(report_step, on_step, index, len(seeds))
            )
            assert self.last_run is not None
            yield GeneratedImage.of_run(index, seed, image, self.last_run)

    def initial_latents(self, seed: int, width: int, height: int) -> tuple[torch.Tensor, torch.Generator]:
        """The seeded starting noise of one image, on this engine's device and dtype."""
        return initial_noise(self.pipeline, seed, width, height, self.device, self.dtype)

    def _diffuse(
        self,
        params: GenerationParams,
        seed: int,
        index: int,
        choice: SamplingChoice,
        callback: Callable[..., Any],
    ) -> Image.Image:
        width, height = params.size
        latents, generator = self.initial_latents(seed, width, height)
        return self.run_pipeline(
            self.pipeline,
            params,
            choice,
            callback,
            generator,
            image_index=index,
            width=width,
            height=height,
            latents=latents,
        )

    def prompt_embeddings(
        self, pipeline: Any, params: GenerationParams, seed: int, index: int, prompt: str | None = None
    ) -> dict[str, torch.Tensor]:
        """The embedding arguments of image `index` (seed `seed`); `prompt` replaces `params.prompt`
        (inpaint's additional prompt as line 0). The plan is kept in `last_prompt_plan`."""
        plan = self.prompts.plan(
            params.prompt if prompt is None else prompt,
            params.negative_prompt,
            params.style_selections,
            seed=seed,
            index=index,
            in_order=params.read_wildcards_in_order,
        )
        self.last_prompt_plan = plan
        return self.prompts.embeddings(
            pipeline,
            plan,
            clip_skip=params.advanced_params.clip_skip,
            guidance_scale=params.guidance_scale,
            job=params,
        )

    def run_pipeline(
        self,
        pipeline: Any,
        params: GenerationParams,
        choice: SamplingChoice,
        callback: Callable[..., Any],
        generator: torch.Generator,
        *,
        image_index: int = 0,
        **call_args: Any,
    ) -> Image.Image:
        """One diffusion on `pipeline` (this one, or a `from_pipe` sibling sharing its UNet) → image.

        The prompt, CFG, CLIP skip, steps and scheduler come from `params`/`choice`; `call_args` add the
        task's own inputs (latents and size, or an init image and strength, a mask, a control image), and
        may hold `prompt=` to replace `params.prompt`. The prompt plan is seeded with `generator`'s seed.
        Fooocus's guidance and refiner apply to every call; `last_run` says what ran.
        """
        embeddings = self.prompt_embeddings(
            pipeline, params, generator.initial_seed(), image_index, call_args.pop("prompt", None)
        )
        # Swap the job's scheduler in for this call only: the pipeline may be shared (the library keeps
        # it warm), and the next user must find the checkpoint's own scheduler there.
        original_scheduler = pipeline.scheduler
        pipeline.scheduler = choice.scheduler
        call_args.setdefault("num_inference_steps", params.steps)
        call = dict(
            **embeddings,
            guidance_scale=params.guidance_scale,
            generator=generator,
            callback_on_step_end=callback,
            callback_on_step_end_tensor_inputs=["latents"],
            output_type="latent",
            **choice.call_options,
            **call_args,
        )
        plan, notes = plan_refiner(
            params, self.model_name, self._find_refiner, separable=is_separable(pipeline, call_args)
        )
        refiner_notes: list[str] = []
        try:
            latents, calls = self._denoise(
                pipeline, call, GuidanceSettings.from_params(params), plan, refiner_notes
            )
        finally:
            pipeline.scheduler = original_scheduler
            # Img2img and inpaint encode through the VAE and cast it back to the model dtype afterwards;
            # in float16 that would undo the float32 VAE that `_decode` relies on.
            self.restore_vae_dtype(pipeline)
        refined = plan is not None and "refiner" in calls
        if plan is not None and not refined:
            notes.append(f"refiner switch step {plan.switch} is at or past the last step: it never ran")
        if refined:
            notes.extend(refiner_notes)
        self.last_run = RunInfo(
            choice.sampler_name,
            choice.scheduler_name,
            plan.model_name if plan is not None and refined else NO_REFINER,
            plan.method if plan is not None and refined else "",
            (*choice.notes, *notes),
            tuple(calls),
            self.last_prompt_plan.metadata() if self.last_prompt_plan is not None else None,
        )
        return decode_latents(self.pipeline, latents)

    def _denoise(
        self,
        pipeline: Any,
        call: dict[str, Any],
        settings: GuidanceSettings,
        plan: RefinerPlan | None,
        notes: list[str],
    ) -> tuple[torch.Tensor, list[str]]:
        """The guided pipeline call(s) → final latents, and which model answered each UNet call;
        `notes` get the refiner's LoRA notes."""
        if plan is None:
            return run_joint(pipeline, call, settings, None)
        assert self.refiners is not None  # `plan_refiner` finds no refiner without a source
        refiner = place_module(
            self.refiners.load_refiner_unet(plan.model_name), self.vram, self.device, self.dtype
        )
        if self.refiner_loras is not None:
            notes.extend(self.refiner_loras(refiner))
        if plan.method == "separate":
            return run_separate(pipeline, call, settings, refiner, plan.switch, self.dtype)
        return run_joint(pipeline, call, settings, joint_route(pipeline, refiner, plan.switch))

    def _find_refiner(self, name: str) -> str | None:
        return self.refiners.find(name) if self.refiners is not None else None

    def restore_vae_dtype(self, pipeline: Any) -> None:
        """Keep an upcasting VAE in float32 under a float16 engine (see `__init__`)."""
        if self.dtype == torch.float16 and pipeline.vae.config.get("force_upcast", False):
            pipeline.vae.to(dtype=torch.float32)
