from __future__ import annotations

import json
from typing import Any

import pytest
from diffusers import (
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
    KDPM2AncestralDiscreteScheduler,
    KDPM2DiscreteScheduler,
    LCMScheduler,
    TCDScheduler,
    UniPCMultistepScheduler,
)
from diffusers.utils import is_scipy_available

from worker.engine.configs import SDXL_BASE
from worker.engine.schedulers import SAMPLERS, build_scheduler

# diffusers' KDPM2 schedulers hand torch tensors to numpy once per element (their warning, not ours).
pytestmark = pytest.mark.filterwarnings("ignore:__array_wrap__ must accept context:DeprecationWarning")


@pytest.fixture(scope="module")
def sdxl_config() -> dict[str, Any]:
    return json.loads((SDXL_BASE / "scheduler" / "scheduler_config.json").read_text())


@pytest.mark.parametrize(
    ("sampler", "cls", "options"),
    [
        ("euler", EulerDiscreteScheduler, {}),
        ("ddim", EulerDiscreteScheduler, {}),  # Fooocus's ddim is Euler
        ("euler_ancestral", EulerAncestralDiscreteScheduler, {}),
        ("heun", HeunDiscreteScheduler, {}),
        ("dpm_2", KDPM2DiscreteScheduler, {}),
        ("dpm_2_ancestral", KDPM2AncestralDiscreteScheduler, {}),
        ("dpmpp_2m", DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++", "solver_order": 2}),
        ("dpmpp_2m_sde", DPMSolverMultistepScheduler, {"algorithm_type": "sde-dpmsolver++"}),
        ("dpmpp_2m_sde_gpu", DPMSolverMultistepScheduler, {"algorithm_type": "sde-dpmsolver++"}),
        ("lcm", LCMScheduler, {}),
        ("tcd", TCDScheduler, {}),
        ("uni_pc", UniPCMultistepScheduler, {"solver_type": "bh1"}),
        ("uni_pc_bh2", UniPCMultistepScheduler, {"solver_type": "bh2"}),
    ],
)
def test_sampler_picks_its_class(sdxl_config: dict[str, Any], sampler: str, cls: type, options: dict) -> None:
    choice = build_scheduler(sdxl_config, sampler, "sgm_uniform")

    assert type(choice.scheduler) is cls
    assert choice.sampler_name == sampler
    assert {key: choice.scheduler.config[key] for key in options} == options
    assert choice.scheduler.config.beta_schedule == "scaled_linear"  # the checkpoint's betas are kept
    assert choice.scheduler.config.beta_end == 0.012


@pytest.mark.parametrize(
    ("scheduler", "flags"),
    [
        ("karras", {"use_karras_sigmas": True, "use_exponential_sigmas": False}),
        ("exponential", {"use_exponential_sigmas": True, "timestep_spacing": "linspace"}),
        ("normal", {"use_karras_sigmas": False, "timestep_spacing": "linspace"}),
        ("sgm_uniform", {"use_karras_sigmas": False, "timestep_spacing": "trailing"}),
        ("simple", {"timestep_spacing": "trailing"}),
        ("ddim_uniform", {"timestep_spacing": "leading", "steps_offset": 1}),
    ],
)
def test_scheduler_sets_its_flags(sdxl_config: dict[str, Any], scheduler: str, flags: dict[str, Any]) -> None:
    choice = build_scheduler(sdxl_config, "dpmpp_2m", scheduler)

    assert choice.scheduler_name == scheduler
    assert {key: choice.scheduler.config[key] for key in flags} == flags


def test_karras_in_the_checkpoint_config_does_not_leak_into_normal(sdxl_config: dict[str, Any]) -> None:
    choice = build_scheduler({**sdxl_config, "use_karras_sigmas": True}, "euler", "normal")

    assert choice.scheduler.config.use_karras_sigmas is False


def test_unknown_names_use_the_fooocus_default(sdxl_config: dict[str, Any]) -> None:
    choice = build_scheduler(sdxl_config, "no-such-sampler", "no-such-scheduler")

    assert (choice.sampler_name, choice.scheduler_name) == ("dpmpp_2m_sde_gpu", "karras")
    assert type(choice.scheduler) is DPMSolverMultistepScheduler
    assert choice.scheduler.config.algorithm_type == "sde-dpmsolver++"
    assert choice.scheduler.config.use_karras_sigmas is True


def test_unsupported_spacing_is_reported_as_used(sdxl_config: dict[str, Any]) -> None:
    # diffusers' Euler a cannot take Karras sigmas: it runs linearly spaced and says so.
    choice = build_scheduler(sdxl_config, "euler_ancestral", "karras")

    assert choice.scheduler_name == "normal"
    assert choice.scheduler.config.timestep_spacing == "linspace"


def test_tcd_runs_with_fooocus_eta(sdxl_config: dict[str, Any]) -> None:
    assert build_scheduler(sdxl_config, "tcd", "tcd").call_options == {"eta": 0.3}
    assert build_scheduler(sdxl_config, "euler", "karras").call_options == {}


def test_lms_without_scipy_falls_back_to_euler(sdxl_config: dict[str, Any]) -> None:
    choice = build_scheduler(sdxl_config, "lms", "normal")

    if is_scipy_available():
        assert (type(choice.scheduler).__name__, choice.sampler_name) == ("LMSDiscreteScheduler", "lms")
    else:
        assert (type(choice.scheduler), choice.sampler_name) == (EulerDiscreteScheduler, "euler")


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_every_mapped_sampler_can_schedule_steps(sdxl_config: dict[str, Any], sampler: str) -> None:
    scheduler = build_scheduler(sdxl_config, sampler, "karras", seed=1).scheduler

    scheduler.set_timesteps(4)

    assert len(scheduler.timesteps) >= 4
