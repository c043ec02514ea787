"""Fooocus's guidance end to end on the tiny model: every option changes the picture, seeds repeat it,
and every Fooocus sampler and scheduler name runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionXLPipeline

from tests.worker.engine.support import PLAIN_GUIDANCE, make_params, pixels
from worker.engine.guidance import GuidanceSettings, guided_unet
from worker.engine.schedulers import SCHEDULERS, build_scheduler
from worker.engine.sdxl import SDXLEngine

# diffusers' KDPM2 schedulers hand torch tensors to numpy once per element (their warning, not ours).
pytestmark = pytest.mark.filterwarnings("ignore:__array_wrap__ must accept context:DeprecationWarning")

# fooocus-engine.md §3 (`flags.py`).
FOOOCUS_SAMPLERS = [
    "euler",
    "euler_ancestral",
    "heun",
    "heunpp2",
    "dpm_2",
    "dpm_2_ancestral",
    "lms",
    "dpm_fast",
    "dpm_adaptive",
    "dpmpp_2s_ancestral",
    "dpmpp_sde",
    "dpmpp_sde_gpu",
    "dpmpp_2m",
    "dpmpp_2m_sde",
    "dpmpp_2m_sde_gpu",
    "dpmpp_3m_sde",
    "dpmpp_3m_sde_gpu",
    "ddpm",
    "lcm",
    "tcd",
    "restart",
    "ddim",
    "uni_pc",
    "uni_pc_bh2",
]
FOOOCUS_SCHEDULERS = [
    "normal",
    "karras",
    "exponential",
    "sgm_uniform",
    "simple",
    "ddim_uniform",
    "lcm",
    "turbo",
    "align_your_steps",
    "tcd",
    "edm_playground_v2.5",
]


def _run(engine: SDXLEngine, seed: int = 31, **fields: object) -> np.ndarray:
    params = make_params(steps=2, guidance_scale=6.0, **{**PLAIN_GUIDANCE, **fields})
    return pixels(next(engine.text_to_image(params, [seed], lambda _: None)).image)


@pytest.fixture(scope="module")
def plain_image(engine: SDXLEngine) -> np.ndarray:
    return _run(engine)


def test_same_seed_same_picture_with_every_option_on(engine: SDXLEngine, plain_image: np.ndarray) -> None:
    options = {"sharpness": 30.0, "adm_scaler_end": 0.5, "freeu_enabled": True, "adm_scaler_positive": 2.0}

    first, again = _run(engine, **options), _run(engine, **options)

    assert (first == again).all()
    assert (_run(engine) == plain_image).all()  # and the options leave nothing behind on the UNet


@pytest.mark.parametrize(
    "option",
    [
        {"sharpness": 30.0},
        {"adm_scaler_positive": 1.5, "adm_scaler_negative": 0.8, "adm_scaler_end": 0.3},
        {"freeu_enabled": True, "freeu_b1": 1.3, "freeu_b2": 1.4, "freeu_s1": 0.9, "freeu_s2": 0.2},
    ],
    ids=["sharpness", "adm", "freeu"],
)
def test_each_option_changes_the_picture(
    engine: SDXLEngine, plain_image: np.ndarray, option: dict[str, object]
) -> None:
    assert (_run(engine, **option) != plain_image).any()


@pytest.mark.parametrize("seed", [0, 12345, 2**63 - 1])
def test_initial_noise_is_torch_manual_seed_randn(engine: SDXLEngine, seed: int) -> None:
    latents, _ = engine.initial_latents(seed, 64, 96)

    with torch.random.fork_rng(devices=[]):  # Fooocus's `prepare_noise`, on the global CPU generator
        torch.manual_seed(seed)
        expected = torch.randn((1, 4, 12, 8))

    assert latents.dtype == torch.float32 and latents.device.type == "cpu"
    assert torch.equal(latents, expected)


@pytest.fixture(scope="module")
def embeds(tiny_pipeline: StableDiffusionXLPipeline) -> dict[str, torch.Tensor]:
    prompt, negative, pooled, negative_pooled = tiny_pipeline.encode_prompt(
        "a cat", device=torch.device("cpu"), negative_prompt=""
    )
    return {
        "prompt_embeds": prompt,
        "negative_prompt_embeds": negative,
        "pooled_prompt_embeds": pooled,
        "negative_pooled_prompt_embeds": negative_pooled,
    }


@pytest.mark.parametrize("scheduler", ["karras", "sgm_uniform"])
@pytest.mark.parametrize("sampler", FOOOCUS_SAMPLERS)
def test_every_sampler_runs_a_guided_step(
    tiny_pipeline: StableDiffusionXLPipeline, embeds: dict[str, torch.Tensor], sampler: str, scheduler: str
) -> None:
    _guided_step(tiny_pipeline, embeds, sampler, scheduler)


@pytest.mark.parametrize("scheduler", FOOOCUS_SCHEDULERS)
def test_every_scheduler_runs_a_guided_step(
    tiny_pipeline: StableDiffusionXLPipeline, embeds: dict[str, torch.Tensor], scheduler: str
) -> None:
    _guided_step(tiny_pipeline, embeds, "euler", scheduler)


def _guided_step(
    pipeline: StableDiffusionXLPipeline, embeds: dict[str, torch.Tensor], sampler: str, scheduler: str
) -> None:
    choice = build_scheduler(pipeline.scheduler.config, sampler, scheduler, seed=3)
    # Every name runs as itself or as a documented stand-in, and a stand-in is noted for the metadata.
    assert choice.sampler_name in FOOOCUS_SAMPLERS and choice.scheduler_name in SCHEDULERS
    assert (choice.sampler_name == sampler) or any(repr(sampler) in note for note in choice.notes)
    original = pipeline.scheduler
    pipeline.scheduler = choice.scheduler
    try:
        with guided_unet(pipeline, GuidanceSettings()) as calls:
            latents = pipeline(
                **embeds,
                num_inference_steps=1,
                width=64,
                height=64,
                guidance_scale=4.0,
                generator=torch.Generator().manual_seed(3),
                output_type="latent",
                **choice.call_options,
            ).images
    finally:
        pipeline.scheduler = original
    assert latents.shape == (1, 4, 8, 8) and torch.isfinite(latents).all()
    assert calls.count("base") >= 1
