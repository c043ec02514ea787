"""Fooocus sampler and scheduler names → a configured diffusers scheduler (fooocus-engine.md §3).

Fooocus names two things: a k-diffusion *sampler* (the update rule) and a *scheduler* (the sigma
spacing). diffusers folds both into one scheduler class plus config flags, so we pick the class from
the sampler and the flags from the scheduler, always starting from the checkpoint's own scheduler
config (its betas and training timesteps). Names we cannot honour fall back visibly: the returned
`SamplingChoice` carries the names actually used and a note for each fallback, for the job's metadata.

Every name of Fooocus's lists is accepted. diffusers has no equivalent of some (fooocus-engine.md §3);
each runs as the nearest sampler or spacing we have, named in `GAP_SAMPLERS` / `GAP_SCHEDULERS`:
dpmpp_3m_sde(_gpu) → dpmpp_2m_sde(_gpu) (same family, one order lower); dpmpp_2s_ancestral →
dpmpp_sde (second-order singlestep with fresh noise every step); heunpp2 and restart → heun (both are
Heun steps, without the third-order correction / the restarts); dpm_fast and dpm_adaptive → dpmpp_2m
(DPM-Solver family, fixed steps instead of fast/adaptive step control). turbo → sgm_uniform (turbo's
t = 999, 899, … is sgm_uniform's spacing at 10 steps), align_your_steps → karras (the nearest
hand-free spacing to the AYS table), edm_playground_v2.5 → karras (the EDM model sampling belongs to
Playground v2.5 checkpoints, which need their own scheduler class).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import diffusers
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils import is_scipy_available, is_torchsde_available

DEFAULT_SAMPLER = "dpmpp_2m_sde_gpu"
DEFAULT_SCHEDULER = "karras"
# The flags every table entry starts from, so a checkpoint whose config enables Karras sigmas does not
# leak them into "normal".
_SIGMA_FLAGS_OFF = {"use_karras_sigmas": False, "use_exponential_sigmas": False, "use_beta_sigmas": False}


@dataclass(frozen=True)
class _Implementation:
    class_name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    requires: str | None = None  # an optional package the class needs: "scipy" or "torchsde"


@dataclass(frozen=True)
class _Sampler:
    implementations: tuple[_Implementation, ...]  # in order of preference
    fallback: str | None = None  # the Fooocus sampler to use when no implementation is available
    call_options: Mapping[str, Any] = field(default_factory=dict)  # extra pipeline arguments


def _one(class_name: str, **options: Any) -> _Sampler:
    return _Sampler((_Implementation(class_name, options),))


_DPMPP_2M_SDE = _one("DPMSolverMultistepScheduler", algorithm_type="sde-dpmsolver++", solver_order=2)
_DPMPP_SDE = _Sampler(
    (
        # The k-diffusion port (Brownian-tree noise seeded by the image seed) needs torchsde; without it
        # the singlestep second-order SDE solver is the nearest diffusers equivalent.
        _Implementation("DPMSolverSDEScheduler", requires="torchsde"),
        _Implementation(
            "DPMSolverSinglestepScheduler",
            {"algorithm_type": "sde-dpmsolver++", "solver_order": 2, "lower_order_final": True},
        ),
    )
)

SAMPLERS: Mapping[str, _Sampler] = {
    "euler": _one("EulerDiscreteScheduler"),
    "euler_ancestral": _one("EulerAncestralDiscreteScheduler"),
    "heun": _one("HeunDiscreteScheduler"),
    "dpm_2": _one("KDPM2DiscreteScheduler"),
    "dpm_2_ancestral": _one("KDPM2AncestralDiscreteScheduler"),
    "lms": _Sampler((_Implementation("LMSDiscreteScheduler", requires="scipy"),), fallback="euler"),
    "dpmpp_2m": _one("DPMSolverMultistepScheduler", algorithm_type="dpmsolver++", solver_order=2),
    "dpmpp_2m_sde": _DPMPP_2M_SDE,
    "dpmpp_2m_sde_gpu": _DPMPP_2M_SDE,  # "_gpu" only moves Fooocus's noise sampler: same maths
    "dpmpp_sde": _DPMPP_SDE,
    "dpmpp_sde_gpu": _DPMPP_SDE,
    "ddpm": _one("DDPMScheduler"),
    "lcm": _one("LCMScheduler"),
    "tcd": _Sampler(
        (_Implementation("TCDScheduler"),), call_options={"eta": 0.3}
    ),  # Fooocus sample_tcd(eta=0.3)
    "ddim": _one("EulerDiscreteScheduler"),  # Fooocus's "ddim" is Euler (with random inpaint noise)
    # diffusers 0.42's UniPC returns NaN latents when its last sigma is zero (any spacing, found by
    # tests/worker/engine/test_guided_runs.py); it ends at sigma_min instead, 0.03 of leftover noise.
    "uni_pc": _one("UniPCMultistepScheduler", solver_type="bh1", final_sigmas_type="sigma_min"),
    "uni_pc_bh2": _one("UniPCMultistepScheduler", solver_type="bh2", final_sigmas_type="sigma_min"),
}

# Fooocus samplers with no diffusers counterpart → the Fooocus sampler that runs instead.
GAP_SAMPLERS: Mapping[str, str] = {
    "dpmpp_3m_sde": "dpmpp_2m_sde",
    "dpmpp_3m_sde_gpu": "dpmpp_2m_sde_gpu",
    "dpmpp_2s_ancestral": "dpmpp_sde",
    "heunpp2": "heun",
    "restart": "heun",
    "dpm_fast": "dpmpp_2m",
    "dpm_adaptive": "dpmpp_2m",
}

SCHEDULERS: Mapping[str, Mapping[str, Any]] = {
    "karras": {"use_karras_sigmas": True},
    "exponential": {"use_exponential_sigmas": True, "timestep_spacing": "linspace"},
    "normal": {"timestep_spacing": "linspace"},
    "sgm_uniform": {"timestep_spacing": "trailing"},
    "simple": {"timestep_spacing": "trailing"},
    "ddim_uniform": {"timestep_spacing": "leading", "steps_offset": 1},
    # Fooocus's lcm/tcd schedulers are its distilled model sampling plus sgm_uniform spacing; the
    # distillation itself lives in diffusers' LCM/TCD scheduler classes (the samplers above).
    "lcm": {"timestep_spacing": "trailing"},
    "tcd": {"timestep_spacing": "trailing"},
}
# Fooocus schedulers with no diffusers counterpart → the spacing used instead.
GAP_SCHEDULERS: Mapping[str, str] = {
    "turbo": "sgm_uniform",
    "align_your_steps": "karras",
    "edm_playground_v2.5": "karras",
}
# Used when the sampler's class cannot apply the requested spacing.
_PLAIN_SCHEDULER = "normal"


@dataclass(frozen=True)
class SamplingChoice:
    """A ready scheduler plus the Fooocus names it actually implements."""

    scheduler: SchedulerMixin
    sampler_name: str
    scheduler_name: str
    call_options: Mapping[str, Any] = field(default_factory=dict)  # extra pipeline `__call__` arguments
    notes: tuple[str, ...] = ()  # why a requested name was not used as it is


def _available(requirement: str | None) -> bool:
    checks = {"scipy": is_scipy_available, "torchsde": is_torchsde_available}
    return requirement is None or checks[requirement]()


def _accepted_options(cls: type[SchedulerMixin]) -> set[str]:
    return set(inspect.signature(cls.__init__).parameters)


def _pick_implementation(sampler_name: str, notes: list[str]) -> tuple[str, _Sampler, _Implementation]:
    if sampler_name in GAP_SAMPLERS:
        name = GAP_SAMPLERS[sampler_name]
        notes.append(f"sampler {sampler_name!r} has no diffusers equivalent: {name!r} used")
    elif sampler_name in SAMPLERS:
        name = sampler_name
    else:
        name = DEFAULT_SAMPLER
        notes.append(f"unknown sampler {sampler_name!r}: the default {name!r} used")
    while True:
        sampler = SAMPLERS[name]
        for implementation in sampler.implementations:
            if _available(implementation.requires):
                return name, sampler, implementation
        if sampler.fallback is None:
            raise RuntimeError(f"no diffusers scheduler available for sampler {name!r}")
        notes.append(
            f"sampler {name!r} needs {implementation.requires}, not installed: {sampler.fallback!r} used"
        )
        name = sampler.fallback


def _pick_spacing(scheduler_name: str, notes: list[str]) -> str:
    if scheduler_name in GAP_SCHEDULERS:
        name = GAP_SCHEDULERS[scheduler_name]
        notes.append(f"scheduler {scheduler_name!r} has no diffusers equivalent: {name!r} used")
        return name
    if scheduler_name in SCHEDULERS:
        return scheduler_name
    notes.append(f"unknown scheduler {scheduler_name!r}: the default {DEFAULT_SCHEDULER!r} used")
    return DEFAULT_SCHEDULER


def build_scheduler(
    base_config: Mapping[str, Any], sampler_name: str, scheduler_name: str, seed: int | None = None
) -> SamplingChoice:
    """A fresh scheduler for one diffusion, built `from_config` of the checkpoint's scheduler config.

    Unknown names become the Fooocus defaults (`dpmpp_2m_sde_gpu` / `karras`), names diffusers lacks
    their nearest equivalent, each with a note. `seed` seeds the Brownian-tree noise of the DPM++ SDE
    port, where that class is in use.
    """
    notes: list[str] = []
    sampler_used, sampler, implementation = _pick_implementation(sampler_name, notes)
    cls: type[SchedulerMixin] = getattr(diffusers, implementation.class_name)
    accepted = _accepted_options(cls)

    scheduler_used = _pick_spacing(scheduler_name, notes)
    if not set(SCHEDULERS[scheduler_used]) <= accepted:
        # e.g. Euler a has no Karras sigmas; classes without `timestep_spacing` space linearly anyway.
        notes.append(f"sampler {sampler_used!r} cannot space steps as {scheduler_used!r}: 'normal' used")
        scheduler_used = _PLAIN_SCHEDULER

    options = {**_SIGMA_FLAGS_OFF, **SCHEDULERS[scheduler_used], **implementation.options}
    if seed is not None and "noise_sampler_seed" in accepted:
        options["noise_sampler_seed"] = seed
    # Keep only what this class takes: other classes' keys (e.g. `skip_prk_steps`) would log a warning.
    config = {key: value for key, value in {**base_config, **options}.items() if key in accepted}
    scheduler = cls.from_config(config)
    return SamplingChoice(scheduler, sampler_used, scheduler_used, dict(sampler.call_options), tuple(notes))
