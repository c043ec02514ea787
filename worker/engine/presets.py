"""Fooocus's model presets (`--preset`, spec §1): a worker's defaults for the fields a request leaves alone.

Usage:

    preset = PRESETS["realistic"]            # `fooocus-fleet worker --preset realistic` / FLEET_PRESET
    params = preset.apply(params)            # before the performance overrides

The rule: a field whose value equals the API default (`GenerationParams()`'s) takes the preset's value;
any other value is the request's choice and is kept. The worker sees the parameters after the edge filled
in the defaults, so a request that sends the API default explicitly (e.g. `guidance_scale: 4.0`) cannot be
told from one that left it out, and gets the preset's value too. `loras` counts as one field (the whole
default list). The preset's checkpoint also becomes the worker's default checkpoint, used when a request
names a file the worker lacks. Unlike Fooocus-API, which ignores the preset's performance (its §8.12), the
preset's performance is applied, so the `lcm` and `lightning` presets are fast by default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contracts.params import AdvancedParams, GenerationParams, Lora, Performance

_API = GenerationParams()
_API_ADVANCED = AdvancedParams()
SLOTS = 5


def _loras(*chosen: tuple[str, float]) -> tuple[Lora, ...]:
    given = [Lora(enabled=True, model_name=name, weight=weight) for name, weight in chosen]
    return (*given, *(Lora(enabled=True, model_name="None", weight=1.0) for _ in range(SLOTS - len(given))))


@dataclass(frozen=True)
class Preset:
    """One `presets/*.json` of Fooocus, reduced to what a job uses."""

    name: str
    checkpoint: str
    refiner: str = "None"
    refiner_switch: float = 0.5
    loras: tuple[Lora, ...] = field(default_factory=_loras)
    cfg: float = 4.0
    sharpness: float = 2.0
    sampler: str = "dpmpp_2m_sde_gpu"
    scheduler: str = "karras"
    performance: Performance = Performance.SPEED
    styles: tuple[str, ...] = ("Fooocus V2", "Fooocus Enhance", "Fooocus Sharp")
    aspect: str = "1152*896"
    negative_prompt: str = ""
    vae: str = "Default (model)"
    inpaint_engine: str = "v2.6"

    def defaults(self) -> dict[str, Any]:
        """The preset's value of every field it governs, by `GenerationParams` field name."""
        return {
            "base_model_name": self.checkpoint,
            "refiner_model_name": self.refiner,
            "refiner_switch": self.refiner_switch,
            "loras": list(self.loras),
            "guidance_scale": self.cfg,
            "sharpness": self.sharpness,
            "performance_selection": self.performance,
            "style_selections": list(self.styles),
            "aspect_ratios_selection": self.aspect,
            "negative_prompt": self.negative_prompt,
        }

    def advanced_defaults(self) -> dict[str, Any]:
        return {
            "sampler_name": self.sampler,
            "scheduler_name": self.scheduler,
            "vae_name": self.vae,
            "inpaint_engine": self.inpaint_engine,
        }

    def apply(self, params: GenerationParams) -> GenerationParams:
        """`params` with every field still at the API default set to this preset's value."""
        update = {k: v for k, v in self.defaults().items() if getattr(params, k) == getattr(_API, k)}
        advanced = params.advanced_params
        advanced_update = {
            k: v
            for k, v in self.advanced_defaults().items()
            if getattr(advanced, k) == getattr(_API_ADVANCED, k)
        }
        if advanced_update:
            update["advanced_params"] = advanced.model_copy(update=advanced_update)
        return params.model_copy(update=update) if update else params


_JUGGERNAUT = "juggernautXL_v8Rundiffusion.safetensors"
_OFFSET_LORA = "sd_xl_offset_example-lora_1.0.safetensors"

PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset("default", _JUGGERNAUT, loras=_loras((_OFFSET_LORA, 0.1))),
        Preset(
            "realistic",
            "realisticStockPhoto_v20.safetensors",
            loras=_loras(("SDXL_FILM_PHOTOGRAPHY_STYLE_V1.safetensors", 0.25)),
            cfg=3.0,
            styles=("Fooocus V2", "Fooocus Photograph", "Fooocus Negative"),
            aspect="896*1152",
            negative_prompt=(
                "unrealistic, saturated, high contrast, big nose, painting, drawing, sketch, cartoon, anime, "
                "manga, render, CG, 3d, watermark, signature, label"
            ),
        ),
        Preset(
            "anime",
            "animaPencilXL_v500.safetensors",
            cfg=6.0,
            styles=("Fooocus V2", "Fooocus Semi Realistic", "Fooocus Masterpiece"),
            aspect="896*1152",
        ),
        Preset(
            "sai",
            "sd_xl_base_1.0_0.9vae.safetensors",
            refiner="sd_xl_refiner_1.0_0.9vae.safetensors",
            refiner_switch=0.75,
            loras=_loras((_OFFSET_LORA, 0.5)),
            cfg=7.0,
            styles=("Fooocus V2", "Fooocus Cinematic"),
        ),
        Preset("lcm", _JUGGERNAUT, performance=Performance.EXTREME_SPEED),
        Preset("lightning", _JUGGERNAUT, performance=Performance.LIGHTNING),
        Preset(
            "playground_v2.5",
            "playground-v2.5-1024px-aesthetic.fp16.safetensors",
            cfg=2.0,
            sampler="dpmpp_2m",
            scheduler="edm_playground_v2.5",
            styles=("Fooocus V2",),
            aspect="1024*1024",
            inpaint_engine="None",
        ),
        Preset(
            "pony_v6",
            "ponyDiffusionV6XL.safetensors",
            cfg=7.0,
            styles=("Fooocus Pony",),
            aspect="896*1152",
            vae="ponyDiffusionV6XL_vae.safetensors",
            inpaint_engine="None",
        ),
    )
}


def preset(name: str | None) -> Preset:
    """The preset called `name` (None → default); `ValueError` lists the known ones."""
    key = name or "default"
    if key not in PRESETS:
        raise ValueError(f"unknown preset {key!r}; known: {', '.join(PRESETS)}")
    return PRESETS[key]
