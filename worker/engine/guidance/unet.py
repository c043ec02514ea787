"""The UNet wrapper that puts Fooocus's guidance into any diffusers SDXL pipeline for one call.

diffusers pipelines run the UNet once per step on the batch [negative; positive] and then combine
`uncond + gs*(cond - uncond)` themselves. While `guided_unet` is active, the UNet's forward:

- replaces the SDXL size conditioning (`time_ids`) by Fooocus's ADM values for the timestep
  (`adm.py`); a ControlNet of the pipeline gets the same values;
- runs the batch, then computes Fooocus's final prediction from both halves with sharpness and CFG
  mimicking at progress `1 - t/999` (`cfg.py`), and returns it as *both* halves, so the pipeline's own
  CFG gives back exactly that prediction (`final + gs*(final - final)`), bit for bit, whatever gs is;
- from a given call on, runs a refiner UNet instead of the base (Fooocus's joint refiner swap, inside
  one loop, so the scheduler keeps its multistep history and noise): an SDXL-refiner gets the CLIP-G
  part of the conditioning and its aesthetic-score size numbers; ControlNet residuals and IP-Adapter
  embeddings are dropped for it, as Fooocus drops them.

FreeU V2 (`freeu.py`) is hooked into the base UNet for the same duration (Fooocus patches only the
base). Each pipeline step makes exactly one UNet call, so the call count is the step index.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from worker.engine.guidance.adm import (
    TRAIN_TIMESTEPS_MAX,
    AdmScalers,
    batch_time_ids,
    refiner_time_ids,
    sdxl_time_ids,
)
from worker.engine.guidance.cfg import CfgSettings, fooocus_cfg
from worker.engine.guidance.freeu import FreeU, freeu_installed

if TYPE_CHECKING:
    from contracts.params import GenerationParams

SDXL_TIME_IDS = 6  # original h, w, crop top, left, target h, w
REFINER_TIME_IDS = 5  # h, w, crop top, left, aesthetic score
# Residuals of ControlNets and T2I adapters, which belong to the base model's features only.
_BASE_ONLY_ARGUMENTS = (
    "down_block_additional_residuals",
    "mid_block_additional_residual",
    "down_intrablock_additional_residuals",
)


@dataclass(frozen=True, slots=True)
class GuidanceSettings:
    """Everything of a request that changes how the UNet's predictions are combined."""

    cfg: CfgSettings = field(default_factory=CfgSettings)
    adm: AdmScalers = field(default_factory=AdmScalers)
    freeu: FreeU | None = None

    @classmethod
    def from_params(cls, params: GenerationParams) -> GuidanceSettings:
        advanced = params.advanced_params
        freeu = (
            FreeU(advanced.freeu_b1, advanced.freeu_b2, advanced.freeu_s1, advanced.freeu_s2)
            if advanced.freeu_enabled
            else None
        )
        return cls(
            CfgSettings(params.guidance_scale, params.sharpness, advanced.adaptive_cfg),
            AdmScalers(advanced.adm_scaler_positive, advanced.adm_scaler_negative, advanced.adm_scaler_end),
            freeu,
        )


@dataclass(frozen=True, slots=True)
class RefinerRoute:
    """Run `unet` instead of the base from UNet call `first_call` (0-based) on."""

    unet: Any
    first_call: int


@dataclass
class GuidedCalls:
    """Which model answered each UNet call of the guided pipeline run, in order."""

    models: list[str] = field(default_factory=list)

    def count(self, model: str) -> int:
        return self.models.count(model)


def progress_of(timestep: float) -> float:
    """Fooocus's `global_diffusion_progress`: 0 at t=999, 1 at t=0."""
    return min(max(1.0 - timestep / TRAIN_TIMESTEPS_MAX, 0.0), 1.0)


def signal_and_noise(scheduler: Any, timestep: float) -> tuple[float, float] | None:
    """(√ᾱ, √(1-ᾱ)) at a possibly fractional timestep, interpolating log σ as diffusers does."""
    alphas = getattr(scheduler, "alphas_cumprod", None)
    if alphas is None:
        return None
    alphas = alphas.double().cpu()
    log_sigmas = 0.5 * torch.log((1 - alphas) / alphas)
    t = min(max(timestep, 0.0), len(alphas) - 1.0)
    low = math.floor(t)
    high = min(low + 1, len(alphas) - 1)
    log_sigma = (1 - (t - low)) * log_sigmas[low] + (t - low) * log_sigmas[high]
    sigma = math.exp(float(log_sigma))
    scale = math.sqrt(1 + sigma**2)
    return 1 / scale, sigma / scale


def time_ids_count(unet: Any, pooled_width: int) -> int:
    """How many size numbers `unet` embeds: 6 for SDXL, 5 for the SDXL refiner."""
    config = unet.config
    return (config.projection_class_embeddings_input_dim - pooled_width) // config.addition_time_embed_dim


class _GuidedForward:
    """Stands in for the base UNet's `forward` (see the module docstring)."""

    def __init__(
        self, pipeline: Any, forward: Any, settings: GuidanceSettings, refiner: RefinerRoute | None
    ) -> None:
        self.pipeline = pipeline
        self.forward = forward
        self.settings = settings
        self.refiner = refiner
        self.calls = GuidedCalls()

    def __call__(self, sample: torch.Tensor, timestep: Any, *args: Any, **kwargs: Any) -> Any:
        t = _scalar(timestep)
        cfg_batch = bool(getattr(self.pipeline, "do_classifier_free_guidance", False))
        refining = self.refiner is not None and len(self.calls.models) >= self.refiner.first_call
        self.calls.models.append("refiner" if refining else "base")
        if refining:
            assert self.refiner is not None
            model, kwargs = self.refiner.unet, self._refiner_arguments(args, kwargs)
            args = ()
        else:
            model = self.forward
        kwargs = self.with_time_ids(kwargs, model if refining else None, sample, t, cfg_batch)
        output = model(sample, timestep, *args, **kwargs)
        if not cfg_batch:
            return output  # CFG 1: the conditional prediction as it is
        return _replace_prediction(output, self._combine(sample, _prediction(output), t))

    def _refiner_arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        assert self.refiner is not None
        kwargs = {key: value for key, value in kwargs.items() if key not in _BASE_ONLY_ARGUMENTS}
        hidden = kwargs.pop("encoder_hidden_states", args[0] if args else None)
        width = self.refiner.unet.config.cross_attention_dim
        if hidden is not None and hidden.shape[-1] > width:
            hidden = hidden[..., -width:]  # an SDXL-refiner reads CLIP-G only (Fooocus `clip_separate`)
        added = dict(kwargs.get("added_cond_kwargs") or {})
        added.pop("image_embeds", None)
        kwargs["added_cond_kwargs"] = added
        kwargs["encoder_hidden_states"] = hidden
        return kwargs

    def with_time_ids(
        self, kwargs: dict[str, Any], refiner_unet: Any, sample: torch.Tensor, t: float, cfg_batch: bool
    ) -> dict[str, Any]:
        added = kwargs.get("added_cond_kwargs")
        if not added or "time_ids" not in added or "text_embeds" not in added:
            return kwargs
        ids = self.time_ids(added, refiner_unet, sample, t, cfg_batch)
        return {**kwargs, "added_cond_kwargs": {**added, "time_ids": ids}}

    def time_ids(
        self, added: dict[str, Any], refiner_unet: Any, sample: torch.Tensor, t: float, cfg_batch: bool
    ) -> torch.Tensor:
        """The ADM (or refiner) size numbers for this call's batch, replacing the pipeline's."""
        current = added["time_ids"]
        factor = self.pipeline.vae_scale_factor
        height, width = sample.shape[-2] * factor, sample.shape[-1] * factor
        pooled_width = added["text_embeds"].shape[-1]
        adm = self.settings.adm
        if refiner_unet is not None and time_ids_count(refiner_unet, pooled_width) == REFINER_TIME_IDS:
            rows = (
                refiner_time_ids(height, width, negative=True),
                refiner_time_ids(height, width, negative=False),
            )
        elif current.shape[-1] == SDXL_TIME_IDS:
            rows = (
                sdxl_time_ids(adm, height, width, t, negative=True),
                sdxl_time_ids(adm, height, width, t, negative=False),
            )
        else:
            return current  # a pipeline built for an SDXL-refiner as base: its own aesthetic ids stand
        return batch_time_ids(rows, current.shape[0], cfg=cfg_batch, like=current)

    def _combine(self, sample: torch.Tensor, prediction: torch.Tensor, t: float) -> torch.Tensor:
        settings = self.settings.cfg
        uncond, cond = prediction.chunk(2)
        if settings.is_plain_conditional:
            final = cond
        else:
            x = sample[:, : prediction.shape[1]].chunk(2)[1]  # inpaint UNets also take mask channels
            levels = signal_and_noise(self.pipeline.scheduler, t)
            v_prediction = self.pipeline.scheduler.config.get("prediction_type") == "v_prediction"
            if levels is not None and v_prediction:
                final = _in_eps_space(uncond, cond, x, levels, settings, progress_of(t))
            else:
                noise_level = levels[1] if levels is not None else 1.0
                guide = x - noise_level * cond  # √ᾱ·x0 for any input scaling: a multiple of x0
                final = fooocus_cfg(uncond, cond, guide, settings, progress_of(t))
        return torch.cat([final, final])


def _in_eps_space(
    uncond: torch.Tensor,
    cond: torch.Tensor,
    x: torch.Tensor,
    levels: tuple[float, float],
    settings: CfgSettings,
    progress: float,
) -> torch.Tensor:
    """v-prediction models: combine as noise predictions (the blur is not linear across the switch)."""
    signal, noise = levels
    eps_u, eps_c = signal * uncond + noise * x, signal * cond + noise * x
    final = fooocus_cfg(eps_u, eps_c, x - noise * eps_c, settings, progress)
    return (final - noise * x) / signal


def _scalar(timestep: Any) -> float:
    if isinstance(timestep, torch.Tensor):
        return float(timestep.flatten()[0])
    return float(timestep)


def _prediction(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output.sample


def _replace_prediction(output: Any, prediction: torch.Tensor) -> Any:
    if isinstance(output, tuple):
        return (prediction, *output[1:])
    output.sample = prediction
    return output


def _controlnet_hook(guided: _GuidedForward) -> Any:
    """ControlNets embed the same size numbers as the UNet (Fooocus patches both forwards)."""

    def hook(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        sample = args[0] if args else kwargs["sample"]
        timestep = args[1] if len(args) > 1 else kwargs["timestep"]
        cfg_batch = bool(getattr(guided.pipeline, "do_classifier_free_guidance", False))
        return args, guided.with_time_ids(kwargs, None, sample, _scalar(timestep), cfg_batch)

    return hook


@contextmanager
def guided_unet(
    pipeline: Any, settings: GuidanceSettings, refiner: RefinerRoute | None = None
) -> Iterator[GuidedCalls]:
    """Fooocus's guidance on `pipeline`'s UNet (and ControlNet) for the duration of the block.

    Yields the record of which model answered each UNet call. The pipeline must keep
    `guidance_rescale` at 0 (its default), which would re-read the conditional half.
    """
    unet = pipeline.unet
    guided = _GuidedForward(pipeline, unet.forward, settings, refiner)
    with ExitStack() as stack:
        if settings.freeu is not None:
            stack.enter_context(freeu_installed(unet, settings.freeu))
        controlnet = getattr(pipeline, "controlnet", None)
        if controlnet is not None:
            handle = controlnet.register_forward_pre_hook(_controlnet_hook(guided), with_kwargs=True)
            stack.callback(handle.remove)
        # An instance attribute shadows the class's forward for nn.Module.__call__. One may be there
        # already (accelerate's offload hooks wrap `forward` so): it is what we call, and put back.
        previous = vars(unet).get("forward")
        unet.forward = guided
        stack.callback(_restore_forward, unet, previous)
        yield guided.calls


def _restore_forward(unet: Any, previous: Any) -> None:
    if previous is None:
        del unet.forward
    else:
        unet.forward = previous
