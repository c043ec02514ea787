from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.worker.engine.conftest import TINY_FILE
from tests.worker.engine.support import make_params, pixels
from worker.engine.loader import ModelLibrary
from worker.engine.refiner import plan_refiner, switch_step
from worker.engine.runs import GeneratedImage
from worker.engine.sdxl import SDXLEngine
from worker.engine.tiny import TINY_NAME, WEIGHT_SEED, write_tiny_checkpoint

REFINER = "fleet-tiny-refiner.safetensors"


def _available(name: str) -> str | None:
    stem = name.removesuffix(".safetensors")
    return f"{stem}.safetensors" if stem in ("base", "refiner") else None


@pytest.mark.parametrize(
    ("fields", "switch"),
    [
        ({}, 15),  # Speed: round(30 * 0.5)
        ({"refiner_switch": 0.8}, 24),
        ({"performance_selection": "Quality", "refiner_switch": 0.25}, 15),
        ({"performance_selection": "Lightning", "refiner_switch": 0.5}, 2),
        ({"refiner_switch": 0.45}, 14),  # 13.5 rounds to the even 14, as Python's round does
        ({"overwrite_switch": 1.0}, 1.0),
        ({"overwrite_switch": 0.5}, 0.5),
    ],
)
def test_switch_step_from_the_modes_steps(fields: dict[str, object], switch: float) -> None:
    assert switch_step(make_params(**fields)) == switch


def test_switch_ignores_overwrite_step_as_fooocus_does() -> None:
    # Speed with overwrite_step 10: the switch stays at 15, so a 10-step run never reaches it.
    params = make_params(steps=10, refiner_switch=0.5, refiner_model_name="refiner")

    plan, notes = plan_refiner(params, "base.safetensors", _available, separable=True)

    assert params.steps == 10
    assert plan is not None and plan.switch == 15
    assert notes == []


@pytest.mark.parametrize(
    ("fields", "method", "note"),
    [
        ({}, "joint", None),
        ({"refiner_swap_method": "separate"}, "separate", None),
        ({"refiner_swap_method": "vae"}, "joint", "'vae' is not supported"),
        ({"refiner_swap_method": "bogus"}, "joint", None),
    ],
)
def test_swap_method_and_its_fallbacks(fields: dict[str, object], method: str, note: str | None) -> None:
    params = make_params(refiner_model_name="refiner", **fields)

    plan, notes = plan_refiner(params, "base.safetensors", _available, separable=True)

    assert plan is not None and (plan.model_name, plan.method) == ("refiner.safetensors", method)
    assert (note is None and notes == []) or (note is not None and note in notes[0])


def test_separate_where_it_cannot_split_runs_joint() -> None:
    params = make_params(refiner_model_name="refiner", refiner_swap_method="separate")

    plan, notes = plan_refiner(params, "base.safetensors", _available, separable=False)

    assert plan is not None and plan.method == "joint"
    assert "'separate' is not supported" in notes[0]


@pytest.mark.parametrize(
    ("name", "note"),
    [("None", None), ("", None), ("base", None), ("base.safetensors", None), ("missing", "not found")],
)
def test_no_refiner(name: str, note: str | None) -> None:
    params = make_params(refiner_model_name=name)

    plan, notes = plan_refiner(params, "base.safetensors", _available, separable=True)

    assert plan is None
    assert (note is None and notes == []) or (note is not None and note in notes[0])


def test_fractional_overwrite_switch_never_runs_the_refiner() -> None:
    params = make_params(refiner_model_name="refiner", overwrite_switch=0.5)

    plan, notes = plan_refiner(params, "base.safetensors", _available, separable=True)

    assert plan is None and "not a step index" in notes[0]


# ----- on the tiny model -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def refiner_library(tmp_path_factory: pytest.TempPathFactory, engine_cache_dir: Path) -> ModelLibrary:
    """The tiny base and a second tiny model of other weights as its refiner."""
    models = tmp_path_factory.mktemp("refiner-models")
    write_tiny_checkpoint(models / "checkpoints", TINY_NAME, cache_dir=engine_cache_dir)
    write_tiny_checkpoint(
        models / "checkpoints", REFINER.removesuffix(".safetensors"), engine_cache_dir, WEIGHT_SEED + 100
    )
    return ModelLibrary(models, engine_cache_dir)


@pytest.fixture(scope="module")
def refiner_engine(refiner_library: ModelLibrary) -> SDXLEngine:
    return SDXLEngine(refiner_library.load(TINY_FILE), model_name=TINY_FILE, refiners=refiner_library)


def test_library_holds_a_base_and_a_refiner_at_once(refiner_library: ModelLibrary) -> None:
    base = refiner_library.load(TINY_FILE)
    unet = refiner_library.load_refiner_unet(REFINER)

    assert refiner_library.load(TINY_FILE) is base  # loading the refiner did not drop the base
    assert refiner_library.load_refiner_unet(REFINER.removesuffix(".safetensors")) is unet
    assert not torch.equal(unet.conv_in.weight, base.unet.conv_in.weight)
    with pytest.raises(LookupError, match="missing"):
        refiner_library.load_refiner_unet("missing")


def _image(engine: SDXLEngine, **fields: object) -> GeneratedImage:
    # Lightning's 4 steps and switch 0.5 put the swap at step 2 of a 4-step run (no override quirk).
    params = make_params(steps=4, performance_selection="Lightning", sampler_name="euler", **fields)
    return next(engine.text_to_image(params, [21], lambda _: None))


def test_joint_refiner_swaps_after_step_switch(refiner_engine: SDXLEngine) -> None:
    base_only = _image(refiner_engine)
    joint = _image(refiner_engine, refiner_model_name=REFINER, overwrite_switch=1.0)

    # The base answers steps 0 and 1 (switch 1), the refiner steps 2 and 3, in one loop.
    assert refiner_engine.last_run is not None
    assert refiner_engine.last_run.unet_calls == ("base", "base", "refiner", "refiner")
    assert (joint.refiner_model_name, joint.refiner_swap_method) == (REFINER, "joint")
    assert base_only.refiner_model_name == "None"
    assert (pixels(joint.image) != pixels(base_only.image)).any()
    again = _image(refiner_engine, refiner_model_name=REFINER, overwrite_switch=1.0)
    assert (pixels(again.image) == pixels(joint.image)).all()


def test_separate_refiner_runs_the_rest_from_the_base_latent(refiner_engine: SDXLEngine) -> None:
    steps: list[tuple[int, int]] = []
    params = make_params(
        steps=4,
        performance_selection="Lightning",
        sampler_name="euler",
        refiner_model_name=REFINER,
        refiner_swap_method="separate",
    )

    images = refiner_engine.text_to_image(params, [21], lambda i: steps.append((i.step, i.total_steps)))
    separate = next(images)

    # Base steps [0, 2), refiner [2, 4); progress counts on through both stages.
    assert refiner_engine.last_run is not None
    assert refiner_engine.last_run.unet_calls == ("base", "base", "refiner", "refiner")
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert separate.refiner_swap_method == "separate"
    assert (pixels(separate.image) != pixels(_image(refiner_engine).image)).any()
