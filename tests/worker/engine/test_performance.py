"""Performance modes: the overrides each fast mode forces on a job's parameters, and a run in each mode."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from contracts import ImageInputs, JobType
from contracts.params import AdvancedParams, GenerationParams, Performance
from tests.worker.engine.tiny_lora import write_tiny_lora
from worker.engine.jobs import JobImages
from worker.engine.performance import effective_params, performance_lora
from worker.settings import WorkerSettings
from worker.warm_models import WorkerEngine

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


@pytest.fixture(scope="module")
def mode_models(
    tmp_path_factory: pytest.TempPathFactory, tiny_models_dir: Path, engine_cache_dir: Path
) -> Path:
    """The tiny checkpoint and a tiny LoRA under each fast mode's own file name."""
    root = tmp_path_factory.mktemp("mode-models")
    shutil.copytree(tiny_models_dir / "checkpoints", root / "checkpoints")
    for seed, performance in enumerate(FORCED, start=1):
        lora = performance_lora(performance)
        assert lora is not None
        write_tiny_lora(root / "loras" / lora[0], engine_cache_dir, seed=seed, text_encoders=False)
    return root


@pytest.mark.parametrize("performance", list(Performance))
def test_each_mode_runs_end_to_end_with_its_steps_sampler_and_lora(
    performance: Performance, mode_models: Path, engine_cache_dir: Path
) -> None:
    engine = WorkerEngine(WorkerSettings(models_dir=mode_models, cache_dir=engine_cache_dir))
    params = GenerationParams(
        prompt="a red fox",
        aspect_ratios_selection="64*64",
        performance_selection=performance,
        style_selections=[],
        loras=[],
    )
    steps: list[int] = []
    job = JobImages(ImageInputs())
    (image,) = engine.run(JobType.TEXT_TO_IMAGE, params, job, [3], lambda info: steps.append(info.step))

    record = image.record
    assert steps[-1] == performance.steps and record.params.steps == performance.steps
    forced = FORCED.get(performance)
    advanced = record.params.advanced_params
    if forced is None:  # Quality and Speed keep the request's sampler and guidance
        assert (advanced.sampler_name, record.params.guidance_scale) == ("dpmpp_2m_sde_gpu", 4.0)
        assert record.loras == ()
    else:
        name, weight = performance_lora(performance)  # type: ignore[misc]
        assert (advanced.sampler_name, advanced.scheduler_name) == forced
        assert (image.sampler_name, image.scheduler_name) == forced  # what the diffusion actually ran
        assert record.params.guidance_scale == 1.0 and record.params.sharpness == 0.0
        assert [(lora.path.name, lora.weight) for lora in record.loras] == [(name, weight)]
    engine.release()
