"""Request bodies as Fooocus-API clients send them."""

from __future__ import annotations

import random

from pydantic import BaseModel, ConfigDict, Field

from contracts import (
    MAX_SEED,
    ControlNetType,
    DescribeType,
    EnhanceTab,
    GenerationParams,
    MaskOptions,
    OutpaintDirection,
    UovMethod,
)
from edge.schemas.limits import BoundedFields


class CommonRequest(GenerationParams, BoundedFields):
    """`POST /v1/generation/text-to-image`: the generation fields plus how to answer."""

    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)

    require_base64: bool = Field(False, description="Add each image as a `data:` URI to the result.")
    async_process: bool = Field(False, description="Answer with the job object at once.")
    webhook_url: str | None = Field("", description="Per-job webhook; empty uses the configured default.")

    def generation_params(self) -> GenerationParams:
        """The worker's part, with a random seed resolved here so every retry draws the same one."""
        seed = self.image_seed
        if not 0 <= seed <= MAX_SEED:
            seed = random.randint(0, MAX_SEED)
        fields = self.model_dump(include=set(GenerationParams.model_fields))
        return GenerationParams.model_validate({**fields, "image_seed": seed})


class ImagePromptJson(BaseModel):
    """One v2 image-prompt slot; a missing or 0 `cn_stop`/`cn_weight` takes the type's default."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    cn_img: str | None = Field(None, description="Base64, `data:image/...;base64,` URI or http(s) URL.")
    cn_stop: float | None = Field(0, ge=0, le=1)
    cn_weight: float | None = Field(0, ge=0, le=2)
    cn_type: ControlNetType = ControlNetType.IMAGE_PROMPT


class TextToImageWithIPRequest(CommonRequest):
    """`POST /v2/generation/text-to-image-with-ip`."""

    image_prompts: list[ImagePromptJson] = Field(default_factory=list)


class UpscaleVaryRequest(TextToImageWithIPRequest):
    """`POST /v2/generation/image-upscale-vary`."""

    input_image: str = Field(description="Base64, `data:image/...;base64,` URI or http(s) URL.")
    uov_method: UovMethod = UovMethod.UPSCALE_2
    upscale_value: float | None = Field(1.0, ge=1.0, le=5.0, description="Factor for `Upscale (Custom)`.")


class InpaintOutpaintRequest(TextToImageWithIPRequest):
    """`POST /v2/generation/image-inpaint-outpaint`: empty `input_image` with no mask and no outpaint
    direction is plain text-to-image, as in Fooocus-API."""

    input_image: str | None = Field("", description="Base64, `data:image/...;base64,` URI or http(s) URL.")
    input_mask: str | None = Field("", description="White (>127) = repaint; same size as the image.")
    inpaint_additional_prompt: str | None = ""
    outpaint_selections: list[OutpaintDirection] = Field(default_factory=list)
    outpaint_distance_left: int | None = -1
    outpaint_distance_right: int | None = -1
    outpaint_distance_top: int | None = -1
    outpaint_distance_bottom: int | None = -1


class ImagePromptRequest(InpaintOutpaintRequest):
    """`POST /v2/generation/image-prompt`: `image_prompts` is required (`[]` is allowed)."""

    input_image: str | None = Field(None, description="Optional image to inpaint or outpaint.")
    image_prompts: list[ImagePromptJson]


class EnhanceCtrlNet(EnhanceTab):
    """One enhancement tab as clients send it; only enabled tabs run."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    enhance_enabled: bool = False

    def tab(self) -> EnhanceTab:
        return EnhanceTab.model_validate(self.model_dump(exclude={"enhance_enabled"}))


class EnhanceOptions(BaseModel):
    """The top-level enhance fields shared by v1 and v2."""

    enhance_checkbox: bool = Field(True, description="Ignored: always on.")
    enhance_uov_method: UovMethod = UovMethod.VARY_STRONG
    enhance_uov_processing_order: str = "Before First Enhancement"
    enhance_uov_prompt_type: str = "Original Prompts"
    save_final_enhanced_image_only: bool = Field(True, description="Ignored: always on.")


class ImageEnhanceRequest(CommonRequest, EnhanceOptions):
    """`POST /v2/generation/image-enhance`: `enhance_ctrlnets` is required; the first three are used."""

    enhance_input_image: str = Field("", description="Base64, `data:image/...;base64,` URI or http(s) URL.")
    enhance_ctrlnets: list[EnhanceCtrlNet]


class GenerateMaskRequest(MaskOptions, BoundedFields):
    """`POST /v1/tools/generate_mask`."""

    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)

    image: str = Field(description="Base64, `data:image/...;base64,` URI or http(s) URL.")


class DescribeQuery(BaseModel):
    """`POST /v1/tools/describe-image` query: `image_type`, or `type` as the docs spell it."""

    image_type: DescribeType | None = None
    type: DescribeType | None = None

    @property
    def chosen(self) -> DescribeType:
        return self.image_type or self.type or DescribeType.PHOTO
