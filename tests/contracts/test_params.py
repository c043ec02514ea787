"""Fooocus-API's generation fields: defaults, ranges, sizes, steps and seeds."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from contracts import MAX_SEED, GenerationParams, Performance


def test_defaults_match_fooocus_api() -> None:
    params = GenerationParams()
    assert params.style_selections == ["Fooocus V2", "Fooocus Enhance", "Fooocus Sharp"]
    assert (params.performance_selection, params.aspect_ratios_selection) == (Performance.SPEED, "1152*896")
    assert (params.image_number, params.image_seed, params.sharpness, params.guidance_scale) == (
        1,
        -1,
        2.0,
        4.0,
    )
    assert [(lora.model_name, lora.weight) for lora in params.loras][:2] == [
        ("sd_xl_offset_example-lora_1.0.safetensors", 0.1),
        ("None", 1.0),
    ]
    assert len(params.loras) == 5
    assert (params.advanced_params.adm_scaler_end, params.advanced_params.overwrite_switch) == (0.3, -1)


@pytest.mark.parametrize(
    ("mode", "steps"),
    [("Speed", 30), ("Quality", 60), ("Extreme Speed", 8), ("Lightning", 4), ("Hyper-SD", 4)],
)
def test_each_performance_mode_has_its_step_count(mode: str, steps: int) -> None:
    assert GenerationParams(performance_selection=mode).steps == steps


def test_overwrite_step_replaces_the_mode_steps() -> None:
    assert GenerationParams(advanced_params={"overwrite_step": 7}).steps == 7


def test_size_is_width_first_and_overwritable() -> None:
    assert GenerationParams(aspect_ratios_selection="896*1152").size == (896, 1152)
    params = GenerationParams(advanced_params={"overwrite_width": 512, "overwrite_height": 640})
    assert params.size == (512, 640)
    assert GenerationParams(aspect_ratios_selection="1024×768").aspect_ratios_selection == "1024*768"


@pytest.mark.parametrize("aspect", ["1024x1024", "1024X1024", "1024 x 1024", "1024×1024", "1024*1024"])
def test_the_size_separators_clients_send_are_read_as_fooocus_writes_them(aspect: str) -> None:
    assert GenerationParams(aspect_ratios_selection=aspect).aspect_ratios_selection == "1024*1024"


@pytest.mark.parametrize("aspect", ["big", "10*10", "1024*", "99999*64", "1024x", "1024+1024"])
def test_malformed_sizes_are_refused(aspect: str) -> None:
    with pytest.raises(ValidationError) as error:
        GenerationParams(aspect_ratios_selection=aspect)
    assert error.value.errors()[0]["loc"] == ("aspect_ratios_selection",)


def test_seeds_count_up_and_wrap_at_the_maximum() -> None:
    assert GenerationParams(image_seed=5, image_number=3).seeds() == [5, 6, 7]
    assert GenerationParams(image_seed=MAX_SEED, image_number=2).seeds() == [MAX_SEED, 0]
    same = GenerationParams(image_seed=5, image_number=3, advanced_params={"disable_seed_increment": True})
    assert same.seeds() == [5, 5, 5]


def test_unresolved_seed_cannot_derive_seeds() -> None:
    with pytest.raises(ValueError, match="resolved"):
        GenerationParams(image_seed=-1).seeds()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("image_number", 33),
        ("image_number", 0),
        ("guidance_scale", 31),
        ("sharpness", -1),
        ("image_seed", 1.5),
    ],
)
def test_out_of_range_fields_are_named(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as error:
        GenerationParams(**{field: value})
    assert error.value.errors()[0]["loc"] == (field,)


def test_compatibility_fixes() -> None:
    assert GenerationParams(meta_scheme="a111").meta_scheme == "a1111"
    assert GenerationParams(refiner_model_name="").refiner_model_name == "None"
    assert GenerationParams(image_seed="123").image_seed == 123
    with pytest.raises(ValidationError):
        GenerationParams(save_name="../escape")


def test_loras_beyond_five_slots_are_dropped() -> None:
    loras = [{"enabled": True, "model_name": f"l{i}.safetensors"} for i in range(7)]
    assert [lora.model_name for lora in GenerationParams(loras=loras).loras][-1] == "l4.safetensors"
