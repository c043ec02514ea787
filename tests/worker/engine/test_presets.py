"""Model presets: defaults for the fields a request left at the API default, never for the others."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from contracts.params import AdvancedParams, GenerationParams, Lora, Performance
from worker.engine.presets import PRESETS, preset
from worker.settings import WorkerSettings


def test_a_preset_fills_the_defaults() -> None:
    applied = PRESETS["realistic"].apply(GenerationParams(prompt="a cat"))
    assert applied.base_model_name == "realisticStockPhoto_v20.safetensors"
    assert applied.guidance_scale == 3.0 and applied.aspect_ratios_selection == "896*1152"
    assert applied.style_selections == ["Fooocus V2", "Fooocus Photograph", "Fooocus Negative"]
    assert applied.negative_prompt.startswith("unrealistic, saturated")
    assert [(lora.model_name, lora.weight) for lora in applied.loras][:2] == [
        ("SDXL_FILM_PHOTOGRAPHY_STYLE_V1.safetensors", 0.25),
        ("None", 1.0),
    ]
    assert len(applied.loras) == 5 and applied.prompt == "a cat"


def test_fields_the_request_set_are_kept() -> None:
    asked = GenerationParams(
        guidance_scale=5.5,
        aspect_ratios_selection="1024*1024",
        style_selections=["Fooocus Sharp"],
        loras=[Lora(enabled=True, model_name="mine.safetensors", weight=0.3)],
        base_model_name="mine.safetensors",
        advanced_params=AdvancedParams(sampler_name="euler"),
    )
    applied = PRESETS["playground_v2.5"].apply(asked)
    assert (applied.guidance_scale, applied.aspect_ratios_selection) == (5.5, "1024*1024")
    assert applied.style_selections == ["Fooocus Sharp"] and applied.base_model_name == "mine.safetensors"
    assert [lora.model_name for lora in applied.loras] == ["mine.safetensors"]
    # The sampler was asked for; the scheduler was left at the default and takes the preset's.
    assert applied.advanced_params.sampler_name == "euler"
    assert applied.advanced_params.scheduler_name == "edm_playground_v2.5"
    assert applied.advanced_params.inpaint_engine == "None"


def test_the_default_preset_changes_nothing_and_others_set_their_table_row() -> None:
    params = GenerationParams(prompt="x")
    assert PRESETS["default"].apply(params) == params
    rows = {}
    for name, chosen in PRESETS.items():
        p = chosen.apply(params)
        rows[name] = (
            p.base_model_name,
            p.refiner_model_name,
            p.refiner_switch,
            p.guidance_scale,
            p.performance_selection,
        )
    assert rows["sai"] == (
        "sd_xl_base_1.0_0.9vae.safetensors",
        "sd_xl_refiner_1.0_0.9vae.safetensors",
        0.75,
        7.0,
        Performance.SPEED,
    )
    assert rows["lcm"][4] is Performance.EXTREME_SPEED and rows["lightning"][4] is Performance.LIGHTNING
    assert rows["anime"][:4] == ("animaPencilXL_v500.safetensors", "None", 0.5, 6.0)
    assert PRESETS["pony_v6"].apply(params).advanced_params.vae_name == "ponyDiffusionV6XL_vae.safetensors"


def test_an_unknown_preset_is_refused_at_start() -> None:
    assert preset(None).name == "default"
    with pytest.raises(ValueError, match="known: default, realistic"):
        preset("realistc")
    with pytest.raises(ValidationError, match="preset"):
        WorkerSettings(preset="realistc")
