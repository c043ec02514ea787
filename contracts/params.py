"""What a job asks for: the Fooocus-API generation parameters, as the worker receives them.

These models mirror Fooocus-API's request fields, names, defaults and ranges (spec §3, §3.1), so the
edge's HTTP models extend them instead of restating them. Unknown fields are ignored, as Fooocus-API
ignores them, so older and newer clients keep working.
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_SEED = 2**63 - 1
MAX_LORAS = 5
# `W*H` as Fooocus writes it; clients also send `WxH` and `W×H`.
ASPECT_PATTERN = re.compile(r"^\s*(\d{1,5})\s*[*xX×]\s*(\d{1,5})\s*$")


class Performance(StrEnum):
    """Fooocus performance modes; each fixes a step count (see `steps`)."""

    SPEED = "Speed"
    QUALITY = "Quality"
    EXTREME_SPEED = "Extreme Speed"
    LIGHTNING = "Lightning"
    HYPER_SD = "Hyper-SD"

    @property
    def steps(self) -> int:
        return _STEPS[self]

    @property
    def upscale_steps(self) -> int:
        return _UPSCALE_STEPS[self]


_STEPS = {
    Performance.QUALITY: 60,
    Performance.SPEED: 30,
    Performance.EXTREME_SPEED: 8,
    Performance.LIGHTNING: 4,
    Performance.HYPER_SD: 4,
}
_UPSCALE_STEPS = {**_STEPS, Performance.QUALITY: 36, Performance.SPEED: 18}


class _Params(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Lora(_Params):
    """One LoRA slot; `model_name` "None" leaves the slot empty."""

    enabled: bool = Field(description="Whether this slot is applied.", examples=[True])
    model_name: str = Field(description="LoRA file name in the worker's loras folder.", examples=["None"])
    weight: float = Field(0.5, ge=-2, le=2, description="LoRA strength.", examples=[0.1])


DEFAULT_LORAS: tuple[Lora, ...] = (
    Lora(enabled=True, model_name="sd_xl_offset_example-lora_1.0.safetensors", weight=0.1),
    *(Lora(enabled=True, model_name="None", weight=1.0) for _ in range(4)),
)
DEFAULT_STYLES = ("Fooocus V2", "Fooocus Enhance", "Fooocus Sharp")


class AdvancedParams(_Params):
    """Fooocus-API's `advanced_params` with its defaults and ranges (spec §3.1)."""

    disable_preview: bool = False
    disable_intermediate_results: bool = False
    disable_seed_increment: bool = Field(False, description="Every image uses the same seed.")
    adm_scaler_positive: float = Field(1.5, ge=0.1, le=3.0)
    adm_scaler_negative: float = Field(0.8, ge=0.1, le=3.0)
    adm_scaler_end: float = Field(0.3, ge=0.0, le=1.0)
    adaptive_cfg: float = Field(7.0, ge=1.0, le=30.0)
    clip_skip: int = Field(2, ge=1, le=12)
    sampler_name: str = "dpmpp_2m_sde_gpu"
    scheduler_name: str = "karras"
    overwrite_step: int = Field(-1, ge=-1, le=200, description="Above 0, replaces the mode's step count.")
    overwrite_switch: float = Field(-1, ge=-1, le=1)
    overwrite_width: int = Field(-1, ge=-1, le=2048)
    overwrite_height: int = Field(-1, ge=-1, le=2048)
    overwrite_vary_strength: float = Field(-1, ge=-1, le=1.0)
    overwrite_upscale_strength: float = Field(-1, ge=-1, le=1.0)
    mixing_image_prompt_and_vary_upscale: bool = False
    mixing_image_prompt_and_inpaint: bool = False
    debugging_cn_preprocessor: bool = False
    skipping_cn_preprocessor: bool = False
    canny_low_threshold: int = Field(64, ge=1, le=255)
    canny_high_threshold: int = Field(128, ge=1, le=255)
    refiner_swap_method: str = "joint"
    controlnet_softness: float = Field(0.25, ge=0.0, le=1.0)
    freeu_enabled: bool = False
    freeu_b1: float = 1.01
    freeu_b2: float = 1.02
    freeu_s1: float = 0.99
    freeu_s2: float = 0.95
    debugging_inpaint_preprocessor: bool = False
    inpaint_disable_initial_latent: bool = False
    inpaint_engine: str = "v2.6"
    inpaint_strength: float = Field(1.0, ge=0.0, le=1.0)
    inpaint_respective_field: float = Field(1.0, ge=0.0, le=1.0)
    inpaint_advanced_masking_checkbox: bool = True
    invert_mask_checkbox: bool = False
    inpaint_erode_or_dilate: int = Field(0, ge=-64, le=64)
    black_out_nsfw: bool = False
    vae_name: str = "Default (model)"
    debugging_dino: bool = False
    dino_erode_or_dilate: int = Field(0, ge=-64, le=64)
    debugging_enhance_masks_checkbox: bool = False


class GenerationParams(_Params):
    """The common generation fields of every Fooocus-API request (spec §3)."""

    prompt: str = Field("", description="Line 1 is the main prompt; further lines are extra prompts.")
    negative_prompt: str = ""
    style_selections: list[str] = Field(default_factory=lambda: list(DEFAULT_STYLES))
    performance_selection: Performance = Performance.SPEED
    aspect_ratios_selection: str = Field(
        "1152*896", description="Output size as `W*H` in pixels.", examples=["1152*896"]
    )
    image_number: int = Field(1, ge=1, le=32)
    image_seed: int = Field(-1, description="-1 (or out of range) picks a random seed.")
    sharpness: float = Field(2.0, ge=0.0, le=30.0)
    guidance_scale: float = Field(4.0, ge=1.0, le=30.0)
    base_model_name: str = "juggernautXL_v8Rundiffusion.safetensors"
    refiner_model_name: str = "None"
    refiner_switch: float = Field(0.5, ge=0.1, le=1.0)
    loras: list[Lora] = Field(default_factory=lambda: list(DEFAULT_LORAS))
    advanced_params: AdvancedParams = Field(default_factory=AdvancedParams)
    save_meta: bool = True
    meta_scheme: str = "fooocus"
    save_extension: str = Field("png", pattern=r"^(?i:png|jpe?g|webp)$")
    save_name: str = Field(
        "", pattern=r"^([A-Za-z0-9_-][A-Za-z0-9._-]{0,99})?$", description="Output file base name."
    )
    read_wildcards_in_order: bool = False

    @field_validator("aspect_ratios_selection")
    @classmethod
    def _aspect_is_w_times_h(cls, value: str) -> str:
        # Fooocus-API lets a malformed size through and the job dies in the worker; we refuse it here.
        match = ASPECT_PATTERN.match(value)
        if match is None:
            raise ValueError("must be `W*H` (or `WxH`), for example `1152*896`")
        width, height = (int(part) for part in match.groups())
        if not (64 <= width <= 4096 and 64 <= height <= 4096):
            raise ValueError("width and height must each be between 64 and 4096")
        return f"{width}*{height}"

    @field_validator("loras")
    @classmethod
    def _at_most_five_loras(cls, value: list[Lora]) -> list[Lora]:
        # Fooocus has five LoRA slots; further entries are dropped, as Fooocus-API drops them.
        return value[:MAX_LORAS]

    @field_validator("meta_scheme")
    @classmethod
    def _meta_scheme_alias(cls, value: str) -> str:
        # Fooocus-API's own field description says `a111`, which crashed its worker.
        return "a1111" if value == "a111" else value

    @field_validator("refiner_model_name")
    @classmethod
    def _empty_refiner_is_none(cls, value: str) -> str:
        return value or "None"

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) after `overwrite_width/height`."""
        width, height = (int(part) for part in self.aspect_ratios_selection.split("*"))
        advanced = self.advanced_params
        return (
            advanced.overwrite_width if advanced.overwrite_width > 0 else width,
            advanced.overwrite_height if advanced.overwrite_height > 0 else height,
        )

    @property
    def steps(self) -> int:
        """Sampling steps: the mode's count unless `overwrite_step` is set."""
        overwrite = self.advanced_params.overwrite_step
        return overwrite if overwrite > 0 else self.performance_selection.steps

    def seeds(self) -> list[int]:
        """One seed per image: seed, seed+1, … (or the same seed with `disable_seed_increment`)."""
        return seed_series(self.image_seed, self.image_number, self.advanced_params.disable_seed_increment)


def seed_series(image_seed: int, image_number: int, disable_seed_increment: bool = False) -> list[int]:
    """The seed of each image of a job: seed, seed+1, … wrapping at `MAX_SEED`, or the same seed each time."""
    if not 0 <= image_seed <= MAX_SEED:
        raise ValueError("image_seed must be resolved before seeds are derived")
    step = 0 if disable_seed_increment else 1
    return [(image_seed + step * i) % (MAX_SEED + 1) for i in range(image_number)]
