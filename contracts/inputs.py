"""Image inputs of a job: what to do with them, and where the edge stored them.

Images never travel inside messages: each `*_key` names an object in storage, written by the edge
under `inputs/{job_id}/` before the job is published.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from contracts.tools import MaskModel


class UovMethod(StrEnum):
    """Fooocus's upscale-or-vary choices."""

    DISABLED = "Disabled"
    VARY_SUBTLE = "Vary (Subtle)"
    VARY_STRONG = "Vary (Strong)"
    UPSCALE_15 = "Upscale (1.5x)"
    UPSCALE_2 = "Upscale (2x)"
    UPSCALE_FAST_2 = "Upscale (Fast 2x)"
    UPSCALE_CUSTOM = "Upscale (Custom)"


class OutpaintDirection(StrEnum):
    LEFT = "Left"
    RIGHT = "Right"
    TOP = "Top"
    BOTTOM = "Bottom"


class ControlNetType(StrEnum):
    """Image-prompt slot types; each has default stop and weight (see `CONTROL_DEFAULTS`)."""

    IMAGE_PROMPT = "ImagePrompt"
    FACE_SWAP = "FaceSwap"
    PYRA_CANNY = "PyraCanny"
    CPDS = "CPDS"


# (stop, weight) used when a request gives 0 or nothing, as Fooocus-API does.
CONTROL_DEFAULTS: dict[ControlNetType, tuple[float, float]] = {
    ControlNetType.IMAGE_PROMPT: (0.5, 0.6),
    ControlNetType.FACE_SWAP: (0.9, 0.75),
    ControlNetType.PYRA_CANNY: (0.5, 1.0),
    ControlNetType.CPDS: (0.5, 1.0),
}
MAX_IMAGE_PROMPTS = 4
MAX_ENHANCE_TABS = 3


class _Inputs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ImagePrompt(_Inputs):
    """One image-prompt (ControlNet / IP-Adapter) slot with its defaults already applied."""

    image_key: str
    cn_type: ControlNetType = ControlNetType.IMAGE_PROMPT
    cn_stop: float = Field(ge=0, le=1)
    cn_weight: float = Field(ge=0, le=2)


class EnhanceTab(_Inputs):
    """One enhancement region: detect it, mask it, inpaint it."""

    enhance_mask_dino_prompt: str = "face"
    enhance_prompt: str = ""
    enhance_negative_prompt: str = ""
    enhance_mask_model: MaskModel = MaskModel.SAM
    enhance_mask_cloth_category: str = "full"
    enhance_mask_sam_model: str = "vit_b"
    enhance_mask_text_threshold: float = Field(0.25, ge=0, le=1)
    enhance_mask_box_threshold: float = Field(0.3, ge=0, le=1)
    enhance_mask_sam_max_detections: int = Field(0, ge=0, le=10)
    enhance_inpaint_disable_initial_latent: bool = False
    enhance_inpaint_engine: str = "v2.6"
    enhance_inpaint_strength: float = Field(1.0, ge=0, le=1)
    enhance_inpaint_respective_field: float = Field(0.618, ge=0, le=1)
    enhance_inpaint_erode_or_dilate: int = Field(0, ge=-64, le=64)
    enhance_mask_invert: bool = False


class ImageInputs(_Inputs):
    """Every image-related part of a job. Empty for plain text-to-image."""

    input_image_key: str | None = Field(None, description="The image to vary, upscale or inpaint.")
    input_mask_key: str | None = Field(None, description="White (>127) = repaint.")
    uov_method: UovMethod = UovMethod.DISABLED
    upscale_value: float | None = Field(None, ge=1.0, le=5.0)
    inpaint_additional_prompt: str = ""
    outpaint_selections: list[OutpaintDirection] = Field(default_factory=list)
    outpaint_distance_left: int = -1
    outpaint_distance_right: int = -1
    outpaint_distance_top: int = -1
    outpaint_distance_bottom: int = -1
    image_prompts: list[ImagePrompt] = Field(default_factory=list, max_length=MAX_IMAGE_PROMPTS)
    enhance_input_key: str | None = None
    enhance_uov_method: UovMethod = UovMethod.DISABLED
    enhance_uov_processing_order: str = "Before First Enhancement"
    enhance_uov_prompt_type: str = "Original Prompts"
    enhance_tabs: list[EnhanceTab] = Field(default_factory=list, max_length=MAX_ENHANCE_TABS)

    def keys(self) -> list[str]:
        """Every storage key this job reads."""
        return stored_keys(
            [self.input_image_key, self.input_mask_key, self.enhance_input_key],
            [prompt.image_key for prompt in self.image_prompts],
        )


def stored_keys(images: list[str | None], prompt_images: list[str]) -> list[str]:
    """Every storage key a job reads: its input, mask and enhance images where given, then the image
    prompts' images, in that order (`ImageInputs.keys`, and readers that keep only the keys)."""
    return [key for key in images if key] + prompt_images
