"""Performance modes: the overrides each fast mode forces on a job's parameters."""

from __future__ import annotations

import pytest

from contracts.params import AdvancedParams, GenerationParams, Performance
from worker.engine.performance import effective_params

# What the request asked for: every overridable field away from both the API default and the forced value.
ASKED = GenerationParams(
    guidance_scale=9.0,
    sharpness=5.0,
    refiner_model_name="refiner.safetensors",
    refiner_switch=0.6,
    advanced_params=AdvancedParams(
        sampler_name="heun",
        scheduler_name="normal",
        adaptive_cfg=5.0,
        adm_scaler_positive=2.0,
        adm_scaler_negative=0.5,
        adm_scaler_end=0.7,
        overwrite_step=12,
    ),
)
FORCED = {  # spec §1: per mode (sampler, scheduler); all three share the rest
    Performance.EXTREME_SPEED: ("lcm", "lcm"),
    Performance.LIGHTNING: ("euler", "sgm_uniform"),
    Performance.HYPER_SD: ("dpmpp_sde_gpu", "karras"),
}


def _fields(params: GenerationParams) -> tuple[object, ...]:
    a = params.advanced_params
    return (
        params.guidance_scale,
        params.sharpness,
        params.refiner_model_name,
        params.refiner_switch,
        a.sampler_name,
        a.scheduler_name,
        a.adaptive_cfg,
        a.adm_scaler_positive,
        a.adm_scaler_negative,
        a.adm_scaler_end,
    )


@pytest.mark.parametrize("performance", list(FORCED))
def test_fast_modes_force_their_sampler_cfg_sharpness_adm_and_no_refiner(performance: Performance) -> None:
    params = ASKED.model_copy(update={"performance_selection": performance})
    effective = effective_params(params)
    sampler, scheduler = FORCED[performance]
    assert _fields(effective) == (1.0, 0.0, "None", 1.0, sampler, scheduler, 1.0, 1.0, 1.0, 0.0)
    # Everything else is the request's, the step override included.
    assert effective.steps == 12 and effective.prompt == params.prompt
    assert effective.performance_selection is performance


@pytest.mark.parametrize(("performance", "steps"), [(Performance.QUALITY, 60), (Performance.SPEED, 30)])
def test_quality_and_speed_change_only_the_steps(performance: Performance, steps: int) -> None:
    params = ASKED.model_copy(
        update={"performance_selection": performance, "advanced_params": AdvancedParams(sampler_name="heun")}
    )
    assert effective_params(params) == params and params.steps == steps


def test_fast_mode_steps() -> None:
    steps = {p: GenerationParams(performance_selection=p).steps for p in FORCED}
    assert steps == {Performance.EXTREME_SPEED: 8, Performance.LIGHTNING: 4, Performance.HYPER_SD: 4}
