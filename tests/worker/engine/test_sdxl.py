from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionXLPipeline

from tests.worker.engine.conftest import TINY_FILE
from tests.worker.engine.support import PLAIN_GUIDANCE, make_params, pixels, png_image
from worker.engine.loader import ModelLibrary
from worker.engine.runs import GeneratedImage, StepInfo
from worker.engine.schedulers import build_scheduler
from worker.engine.sdxl import SDXLEngine


class Stop(Exception):
    """Stands in for the runner's JobInterrupted."""


def _run(engine: SDXLEngine, seeds: list[int], steps: int = 3, **fields: object) -> list[GeneratedImage]:
    return list(engine.text_to_image(make_params(steps=steps, **fields), seeds, lambda _: None))


def test_same_seed_same_image_other_seed_other_image(engine: SDXLEngine) -> None:
    # The default sampler (dpmpp_2m_sde_gpu) draws noise every step: that noise is seeded too.
    first, again, other = (_run(engine, [seed])[0] for seed in (11, 11, 12))

    assert (pixels(first.image) == pixels(again.image)).all()
    assert (pixels(first.image) != pixels(other.image)).any()
    assert (first.sampler_name, first.scheduler_name) == ("dpmpp_2m_sde_gpu", "karras")


def test_one_image_per_seed_in_order(engine: SDXLEngine) -> None:
    params = make_params(steps=2, size="64*96", image_number=2, image_seed=100)

    images = list(engine.text_to_image(params, params.seeds(), lambda _: None))

    assert [(image.index, image.seed) for image in images] == [(0, 100), (1, 101)]
    assert all(image.image.size == (64, 96) for image in images)  # Fooocus sizes are width*height
    assert (pixels(images[0].image) != pixels(images[1].image)).any()


def test_images_are_yielded_as_soon_as_each_is_done(engine: SDXLEngine) -> None:
    steps: list[tuple[int, int]] = []
    params = make_params(steps=2)

    images = engine.text_to_image(params, [1, 2], lambda info: steps.append((info.image_index, info.step)))
    first = next(images)

    assert first.index == 0
    assert steps == [(0, 1), (0, 2)]  # the second image has not started
    next(images)
    assert steps[2:] == [(1, 1), (1, 2)]


def test_initial_noise_is_cpu_randn_of_the_seed(engine: SDXLEngine) -> None:
    # With a deterministic sampler the image is a function of the initial latents alone, so handing the
    # documented noise straight to a plain pipeline on the same components must give the same picture.
    # Without styles, a one-line prompt is one workload, which diffusers' own encoding reproduces; Fooocus's
    # guidance is off, so that the plain pipeline's CFG is the same formula.
    seed = 5
    params = make_params(
        steps=2, sampler_name="euler", scheduler_name="normal", style_selections=[], **PLAIN_GUIDANCE
    )
    generated = next(engine.text_to_image(params, [seed], lambda _: None))

    euler = build_scheduler(engine.pipeline.scheduler.config, "euler", "normal").scheduler
    plain = StableDiffusionXLPipeline(**{**engine.pipeline.components, "scheduler": euler})
    plain.set_progress_bar_config(disable=True)
    noise = torch.randn((1, 4, 8, 8), generator=torch.Generator("cpu").manual_seed(seed))
    direct = plain(
        prompt=params.prompt,
        negative_prompt="",
        width=64,
        height=64,
        num_inference_steps=2,
        guidance_scale=params.guidance_scale,
        latents=noise,
    ).images[0]

    assert (pixels(generated.image) == pixels(direct)).all()


def test_on_step_sees_every_step_of_every_image(engine: SDXLEngine) -> None:
    seen: list[StepInfo] = []

    list(engine.text_to_image(make_params(steps=4, sampler_name="euler"), [1, 2], seen.append))

    assert [(info.image_index, info.step) for info in seen] == [(i, s) for i in (0, 1) for s in (1, 2, 3, 4)]
    assert {(info.image_count, info.total_steps) for info in seen} == {(2, 4)}


def test_preview_is_a_png_a_quarter_of_the_image_size(engine: SDXLEngine) -> None:
    previews: list[bytes] = []

    list(
        engine.text_to_image(
            make_params(steps=2, size="64*96"), [3], lambda info: previews.append(info.preview())
        )
    )

    assert len(previews) == 2
    assert png_image(previews[0]).size == (16, 24)
    assert previews[0] != previews[1]  # each step shows its own latents


def test_exception_in_on_step_stops_at_that_step(engine: SDXLEngine) -> None:
    reached: list[int] = []

    def on_step(info: StepInfo) -> None:
        reached.append(info.step)
        if info.step == 2:
            raise Stop

    images = engine.text_to_image(make_params(steps=5), [1, 2], on_step)
    with pytest.raises(Stop):
        next(images)

    assert reached == [1, 2]
    assert len(_run(engine, [1], steps=1)) == 1  # the engine is still usable


def test_sampler_choice_reaches_the_pipeline_for_that_run_only(engine: SDXLEngine) -> None:
    original = engine.pipeline.scheduler
    used: list[type] = []
    params = make_params(steps=2, sampler_name="euler_ancestral", scheduler_name="karras")

    generated = next(
        engine.text_to_image(params, [1], lambda _: used.append(type(engine.pipeline.scheduler)))
    )

    assert used == [EulerAncestralDiscreteScheduler] * 2
    assert (generated.sampler_name, generated.scheduler_name) == ("euler_ancestral", "normal")
    assert engine.pipeline.scheduler is original  # a shared pipeline keeps the checkpoint's scheduler


@pytest.mark.parametrize(
    ("fields", "argument"),
    [
        ({"size": "100*64"}, "width"),
        ({"size": "64*68"}, "height"),
    ],
)
def test_check_inputs_names_the_argument(engine: SDXLEngine, fields: dict[str, str], argument: str) -> None:
    with pytest.raises(ValueError, match=f"`{argument}`"):
        engine.text_to_image(make_params(**fields), [1], lambda _: None)  # raises before iteration


@pytest.mark.parametrize("seeds", [[], [-1], [2**64]])
def test_check_inputs_refuses_bad_seeds(engine: SDXLEngine, seeds: list[int]) -> None:
    with pytest.raises(ValueError, match="`seeds`"):
        engine.text_to_image(make_params(), seeds, lambda _: None)


def test_float16_keeps_the_sdxl_vae_in_float32(tiny_models_dir: Path, engine_cache_dir: Path) -> None:
    # SDXL's VAE overflows in float16; the engine decodes in float32 instead of casting it per image.
    pipeline = ModelLibrary(tiny_models_dir, engine_cache_dir).load(TINY_FILE)
    half = SDXLEngine(pipeline, dtype=torch.float16)

    image = next(half.text_to_image(make_params(steps=2), [4], lambda _: None)).image

    assert half.pipeline.unet.dtype == torch.float16
    assert half.pipeline.vae.dtype == torch.float32
    assert image.size == (64, 64)
