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
    MaskModel,
    OutpaintDirection,
    UovMethod,
)


class CommonRequest(GenerationParams):
    """`POST /v1/generation/text-to-image`: the generation fields plus how to answer."""

    model_config = ConfigDict(extra="ignore", frozen=True)

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


class EnhanceCtrlNet(BaseModel):
    """One enhancement tab as clients send it; only enabled tabs run."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    enhance_enabled: bool = False
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

    def tab(self) -> EnhanceTab:
        fields = self.model_dump(exclude={"enhance_enabled"})
        return EnhanceTab.model_validate({**fields, "enhance_mask_model": self.enhance_mask_model.value})


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


class GenerateMaskRequest(BaseModel):
    """`POST /v1/tools/generate_mask`."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    image: str = Field(description="Base64, `data:image/...;base64,` URI or http(s) URL.")
    mask_model: MaskModel = MaskModel.ISNET_GENERAL_USE
    cloth_category: str = "full"
    dino_prompt_text: str = ""
    sam_model: str = "vit_b"
    box_threshold: float = Field(0.3, ge=0, le=1)
    text_threshold: float = Field(0.25, ge=0, le=1)
    sam_max_detections: int = Field(0, ge=0, le=10)
    dino_erode_or_dilate: int = Field(0, ge=-64, le=64)
    dino_debug: bool = False


class DescribeQuery(BaseModel):
    """`POST /v1/tools/describe-image` query: `image_type`, or `type` as the docs spell it."""

    image_type: DescribeType | None = None
    type: DescribeType | None = None

    @property
    def chosen(self) -> DescribeType:
        return self.image_type or self.type or DescribeType.PHOTO
