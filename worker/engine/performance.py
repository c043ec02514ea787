"""Performance modes: the settings the fast modes force, and the LoRA each one runs with (spec §1).

Usage:

    params = effective_params(params)              # once per job, before anything reads the params
    lora = performance_lora(params.performance_selection)  # ("sdxl_lcm_lora.safetensors", 1.0) or None

Quality and Speed change only the step count (`Performance.steps`). Extreme Speed, Lightning and Hyper-SD
run a distilled LoRA and force their sampler and scheduler, CFG 1 (the negative prompt is then never used),
sharpness 0, adaptive CFG 1, neutral ADM scaling and no refiner, whatever the request said, as Fooocus does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from contracts.params import Performance

if TYPE_CHECKING:
    from contracts.params import GenerationParams


@dataclass(frozen=True)
class FastMode:
    """What a distilled performance mode forces, and its LoRA file in the `loras` folder."""

    sampler_name: str
    scheduler_name: str
    lora_name: str
    lora_weight: float


FAST_MODES: dict[Performance, FastMode] = {
    Performance.EXTREME_SPEED: FastMode("lcm", "lcm", "sdxl_lcm_lora.safetensors", 1.0),
    Performance.LIGHTNING: FastMode("euler", "sgm_uniform", "sdxl_lightning_4step_lora.safetensors", 1.0),
    Performance.HYPER_SD: FastMode("dpmpp_sde_gpu", "karras", "sdxl_hyper_sd_4step_lora.safetensors", 0.8),
}
PERFORMANCE_LORA_NAMES = frozenset(mode.lora_name for mode in FAST_MODES.values())


def effective_params(params: GenerationParams) -> GenerationParams:
    """`params` with the forced overrides of a fast mode applied; Quality and Speed pass unchanged."""
    mode = FAST_MODES.get(params.performance_selection)
    if mode is None:
        return params
    advanced = params.advanced_params.model_copy(
        update={
            "sampler_name": mode.sampler_name,
            "scheduler_name": mode.scheduler_name,
            "adaptive_cfg": 1.0,
            "adm_scaler_positive": 1.0,
            "adm_scaler_negative": 1.0,
            "adm_scaler_end": 0.0,
        }
    )
    return params.model_copy(
        update={
            "guidance_scale": 1.0,
            "sharpness": 0.0,
            "refiner_model_name": "None",
            "refiner_switch": 1.0,
            "advanced_params": advanced,
        }
    )


def performance_lora(performance: Performance) -> tuple[str, float] | None:
    """The (file name, weight) of the LoRA a mode runs with, or None for Quality and Speed."""
    mode = FAST_MODES.get(performance)
    return None if mode is None else (mode.lora_name, mode.lora_weight)
