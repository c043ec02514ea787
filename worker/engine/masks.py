"""Segmentation masks for `GenerateMask` and Enhance, from the models in `models/masks/`.

Fooocus runs rembg's U²-Net/ISNet models (ONNX) and GroundingDINO + SAM. This worker has neither
onnxruntime nor those models' code, so every request fails with a message naming the file it would
need and what else is missing; a mask is never made up.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from PIL import Image

from worker.engine.folders import MissingModelError, ModelFolders

REMBG_MODELS = (
    "u2net",
    "u2netp",
    "u2net_human_seg",
    "u2net_cloth_seg",
    "silueta",
    "isnet-general-use",
    "isnet-anime",
)
SAM_FILES = {
    "vit_b": "sam_vit_b_01ec64.pth",
    "vit_l": "sam_vit_l_0b3195.pth",
    "vit_h": "sam_vit_h_4b8939.pth",
}
GROUNDING_DINO_FILE = "groundingdino_swint_ogc.pth"


class MaskUnavailableError(RuntimeError):
    """The mask model is there but this worker cannot run it."""


@dataclass(frozen=True)
class MaskRequest:
    model: str = "isnet-general-use"
    dino_prompt: str = ""
    cloth_category: str = "full"
    sam_model: str = "vit_b"
    box_threshold: float = 0.3
    text_threshold: float = 0.25
    max_detections: int = 0


def generate_mask(folders: ModelFolders, image: Image.Image, request: MaskRequest) -> Image.Image:
    """A white-on-black "L" mask of `image`, or an error naming what is missing."""
    masks = folders.folder("masks")
    if request.model in REMBG_MODELS:
        folders.require(f"the `{request.model}` mask model", masks / f"{request.model}.onnx")
        if importlib.util.find_spec("onnxruntime") is None:
            raise MaskUnavailableError(
                f"the `{request.model}` mask model is an ONNX model and this worker has no onnxruntime"
            )
        raise MaskUnavailableError(f"running the `{request.model}` ONNX mask model is not implemented yet")
    if request.model == "sam":
        sam = SAM_FILES.get(request.sam_model)
        if sam is None:
            raise ValueError(f"unknown SAM model `{request.sam_model}`; expected one of {sorted(SAM_FILES)}")
        folders.require(
            "the `sam` mask model (GroundingDINO + SAM)", masks / GROUNDING_DINO_FILE, masks / sam
        )
        raise MaskUnavailableError("GroundingDINO + SAM masks are not implemented on this worker yet")
    raise MissingModelError(f"the unknown mask model `{request.model}`", masks / f"{request.model}.onnx")
