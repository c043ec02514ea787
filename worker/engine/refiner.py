"""Fooocus's refiner (fooocus-engine.md §4.4): which model takes over, at which step, and how.

`refiner_model_name` names a checkpoint; "None", an unknown name or the base itself means no refiner.
The switch step is `round(mode steps * refiner_switch)`, or `overwrite_switch` when set. Fooocus
computes it from the performance mode's step count *before* `overwrite_step` applies, so e.g. Speed
(30) with overwrite_step 10 and switch 0.5 switches at step 15 and the refiner never runs; and a
fractional `overwrite_switch` (the API takes -1..1) never equals a step index, so it never runs
either. Both quirks are kept.

Swap methods:

- `joint` (the default): one denoising loop; the base makes the model calls of steps 0..switch and the
  refiner the rest, with the scheduler's state carried over (`guidance.RefinerRoute`).
- `separate`: the base runs steps [0, switch) with `denoising_end`, then an img2img run of the refiner
  continues from that latent with `denoising_start` and a fresh solver, as diffusers' ensemble of
  experts does. Only for plain text-to-image and img2img runs on first-order samplers; others use
  `joint`, and say so.
- `vae` (Fooocus: an SD1.5 refiner with its own VAE, re-noised through an interposer) is not
  supported: `joint` runs instead, and the job's metadata says so.

Fooocus applies neither FreeU, ControlNets nor IP-Adapters to the refiner; neither do we. The job's user
LoRAs do apply to it: `SDXLEngine.refiner_loras` (set by the worker) switches them on the refiner UNet.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from diffusers import StableDiffusionXLImg2ImgPipeline, StableDiffusionXLPipeline

from worker.engine.guidance import GuidanceSettings, RefinerRoute, guided_unet

if TYPE_CHECKING:
    from contracts.params import GenerationParams

NO_REFINER = "None"
SWAP_METHODS = ("joint", "separate", "vae")
DEFAULT_SWAP_METHOD = "joint"
# Arguments of a text-to-image or img2img call that describe its start; the refiner stage replaces them.
_START_ARGUMENTS = ("latents", "width", "height", "image", "strength")


def switch_step(params: GenerationParams) -> float:
    """The step index after which the refiner takes over (see the module docstring for the quirks)."""
    overwrite = params.advanced_params.overwrite_switch
    if overwrite > 0:
        return overwrite
    return round(params.performance_selection.steps * params.refiner_switch)  # Python rounding, as Fooocus


@dataclass(frozen=True, slots=True)
class RefinerPlan:
    """A refiner that will run: its checkpoint, swap method (after fallbacks) and switch step."""

    model_name: str
    method: str
    switch: int


def plan_refiner(
    params: GenerationParams, base_name: str, resolve: Callable[[str], str | None], *, separable: bool
) -> tuple[RefinerPlan | None, list[str]]:
    """The refiner this job runs, if any, and notes on every way it departs from the request.

    `resolve` maps a requested name to an available checkpoint (or None); `separable` says whether
    the call can be split in two (see `separate` in the module docstring).
    """
    requested = params.refiner_model_name
    if requested in ("", NO_REFINER):
        return None, []
    name = resolve(requested)
    if name is None:
        return None, [f"refiner {requested!r} not found: no refiner used"]
    if name == base_name or resolve(base_name) == name:
        return None, []  # Fooocus drops a refiner that is the base model
    notes = []
    method = params.advanced_params.refiner_swap_method
    if method not in SWAP_METHODS:
        method = DEFAULT_SWAP_METHOD  # as Fooocus-API resets an unknown method
    if method == "vae":
        notes.append("refiner_swap_method 'vae' is not supported: 'joint' used")
        method = "joint"
    if method == "separate" and not separable:
        notes.append("refiner_swap_method 'separate' is not supported for this task: 'joint' used")
        method = "joint"
    switch = switch_step(params)
    if switch != int(switch):
        notes.append(f"refiner switch {switch} is not a step index: the refiner never runs (as in Fooocus)")
        return None, notes
    return RefinerPlan(name, method, int(switch)), notes


def is_separable(pipeline: Any, call_args: dict[str, Any]) -> bool:
    """Whether a call can run as two stages: plain text-to-image or img2img, without IP-Adapter, on a
    first-order scheduler (a second-order one repeats each timestep, so a timestep cut would split
    a step between its two model calls)."""
    plain = type(pipeline) in (StableDiffusionXLPipeline, StableDiffusionXLImg2ImgPipeline)
    ip_adapter = any(key.startswith("ip_adapter") for key in call_args)
    return plain and not ip_adapter and pipeline.scheduler.order == 1


def joint_route(pipeline: Any, refiner_unet: Any, switch: int) -> RefinerRoute:
    """The refiner makes every model call after the first evaluation of step `switch`.

    Second-order schedulers make two calls per step (Heun: t_k then t_{k+1}); like k-diffusion's
    callback, the swap comes after the first call of step `switch`.
    """
    return RefinerRoute(refiner_unet, switch * pipeline.scheduler.order + 1)


def run_joint(
    pipeline: Any, call: dict[str, Any], settings: GuidanceSettings, route: RefinerRoute | None
) -> tuple[torch.Tensor, list[str]]:
    """One guided pipeline call → (latents, which model answered each UNet call)."""
    with guided_unet(pipeline, settings, route) as calls:
        latents = pipeline(**call).images
    return latents, calls.models


def step_timesteps(pipeline: Any, call: dict[str, Any]) -> tuple[list[float], int]:
    """The timestep of each step's first model call, as the pipeline will schedule them, and the
    number of model calls of the whole run."""
    scheduler = type(pipeline.scheduler).from_config(pipeline.scheduler.config)
    steps = call["num_inference_steps"]
    scheduler.set_timesteps(steps)
    order = scheduler.order
    timesteps = scheduler.timesteps
    if "strength" in call:  # img2img runs the tail of the schedule (the pipeline's `get_timesteps`)
        start = max(steps - min(int(steps * call["strength"]), steps), 0)
        timesteps = timesteps[start * order :]
    return [float(t) for t in timesteps[::order]], len(timesteps)


def run_separate(
    pipeline: Any,
    call: dict[str, Any],
    settings: GuidanceSettings,
    refiner_unet: Any,
    switch: int,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, list[str]]:
    """Base steps [0, switch), then an img2img refiner run over the rest with a fresh solver."""
    timesteps, total = step_timesteps(pipeline, call)
    if switch <= 0:
        return run_joint(pipeline, call, settings, RefinerRoute(refiner_unet, 0))
    if switch >= len(timesteps):
        return run_joint(pipeline, call, settings, None)
    # The cut: an integer timestep above step `switch`'s and at most step `switch-1`'s.
    cutoff = min(math.floor(timesteps[switch]) + 1, math.floor(timesteps[switch - 1]))
    fraction = 1.0 - cutoff / pipeline.scheduler.config.num_train_timesteps
    callback = call.get("callback_on_step_end")

    base_call = {**call, "denoising_end": fraction}
    if callback is not None:
        base_call["callback_on_step_end"] = _counted(callback, 0, total)
    latents, models = run_joint(pipeline, base_call, settings, None)
    done = len(models)

    stage = StableDiffusionXLImg2ImgPipeline.from_pipe(pipeline, dtype=dtype)
    stage.set_progress_bar_config(disable=True)
    refiner_call = {key: value for key, value in call.items() if key not in _START_ARGUMENTS}
    refiner_call.update(image=latents, denoising_start=fraction)
    if callback is not None:
        # Progress goes on counting where the base stopped, not from 1 again.
        refiner_call["callback_on_step_end"] = _counted(callback, done, total)
    refined, refiner_models = run_joint(stage, refiner_call, settings, RefinerRoute(refiner_unet, 0))
    return refined, models + refiner_models


class _StepsOfWholeRun:
    """A stage's pipeline as the step callback sees it: `num_timesteps` counts the whole run."""

    def __init__(self, pipeline: Any, total: int) -> None:
        self._pipeline = pipeline
        self.num_timesteps = total

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipeline, name)


def _counted(callback: Callable[..., Any], offset: int, total: int) -> Callable[..., Any]:
    """The step callback of one stage, counting steps from `offset` out of the run's `total`."""

    def on_step_end(pipeline: Any, index: int, timestep: Any, tensors: dict[str, Any]) -> Any:
        return callback(_StepsOfWholeRun(pipeline, total), index + offset, timestep, tensors)

    return on_step_end
