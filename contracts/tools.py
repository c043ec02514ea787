"""Tools that answer at once instead of queueing a job: describe an image, generate a mask.

The edge sends a request to the tools queue and waits for the reply (RabbitMQ direct reply-to);
any worker that has the model answers.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.base import Message


class DescribeType(StrEnum):
    PHOTO = "Photo"
    ANIME = "Anime"


class MaskModel(StrEnum):
    U2NET = "u2net"
    U2NETP = "u2netp"
    U2NET_HUMAN_SEG = "u2net_human_seg"
    U2NET_CLOTH_SEG = "u2net_cloth_seg"
    SILUETA = "silueta"
    ISNET_GENERAL_USE = "isnet-general-use"
    ISNET_ANIME = "isnet-anime"
    SAM = "sam"


class DescribeImage(Message):
    """Caption an image (Photo) or tag it (Anime)."""

    type: Literal["tool.describe"] = "tool.describe"
    image_key: str
    image_type: DescribeType = DescribeType.PHOTO


class MaskOptions(BaseModel):
    """How to segment: Fooocus-API's `generate_mask` fields, shared by the HTTP request and the RPC."""

    model_config = ConfigDict(frozen=True)

    mask_model: MaskModel = MaskModel.ISNET_GENERAL_USE
    cloth_category: str = "full"
    dino_prompt_text: str = ""
    sam_model: str = "vit_b"
    box_threshold: float = Field(0.3, ge=0, le=1)
    text_threshold: float = Field(0.25, ge=0, le=1)
    sam_max_detections: int = Field(0, ge=0, le=10)
    dino_erode_or_dilate: int = Field(0, ge=-64, le=64)
    dino_debug: bool = False


class GenerateMask(Message, MaskOptions):
    """Segment an image into a white-on-black mask, stored under `mask_key` by the worker."""

    type: Literal["tool.mask"] = "tool.mask"
    image_key: str
    mask_key: str


class ToolResult(Message):
    """The reply to a tool request: `text` for describe, `mask_key` for masks, or an `error`."""

    type: Literal["tool.result"] = "tool.result"
    text: str | None = None
    mask_key: str | None = None
    error: str | None = None


ToolRequest = DescribeImage | GenerateMask
