"""Segmentation masks for `GenerateMask` and Enhance.

Fooocus runs rembg's U²-Net/ISNet models (ONNX) and GroundingDINO + SAM. The rembg-style models run
here with onnxruntime (`<name>.onnx` in `models/masks/`); `sam` runs GroundingDINO + SAM with
transformers from `models/grounding-dino/` and `models/sam/` (`worker.engine.grounded_sam`). A missing
model fails with a message naming what to put where; a mask is never made up.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from contracts import MaskOptions
from worker.engine.folders import MissingModelError, ModelFolders
from worker.engine.grounded_sam import sam_mask

REMBG_MODELS = (
    "u2net",
    "u2netp",
    "u2net_human_seg",
    "u2net_cloth_seg",
    "silueta",
    "isnet-general-use",
    "isnet-anime",
)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# rembg's ISNet sessions subtract the ImageNet mean but do not divide by its std.
UNIT_STD = (1.0, 1.0, 1.0)
# The input side used when the model's input has no static height/width.
DEFAULT_SIDES = {"isnet-general-use": 1024, "isnet-anime": 1024, "u2net_cloth_seg": 768}
DEFAULT_SIDE = 320
# u2net_cloth_seg scores four classes per pixel: 0 background, then one per `cloth_category`.
CLOTH_CLASSES = {"upper": 1, "lower": 2, "full": 3}


class MaskUnavailableError(RuntimeError):
    """The mask model is there but this worker cannot run it."""


def generate_mask(folders: ModelFolders, image: Image.Image, request: MaskOptions) -> Image.Image:
    """A white-on-black "L" mask of `image` (same size, grey kept), or an error naming what is missing."""
    masks = folders.folder("masks")
    if request.mask_model in REMBG_MODELS:
        path = masks / f"{request.mask_model}.onnx"
        folders.require(f"the `{request.mask_model}` mask model", path)
        if request.mask_model == "u2net_cloth_seg" and request.cloth_category not in CLOTH_CLASSES:
            raise ValueError(
                f"unknown cloth category `{request.cloth_category}`; expected one of {sorted(CLOTH_CLASSES)}"
            )
        mask = _run_rembg_model(path, request, image.convert("RGB"))
        return grow_or_shrink(mask, request.dino_erode_or_dilate)
    if request.mask_model == "sam":
        return grow_or_shrink(sam_mask(folders, image, request), request.dino_erode_or_dilate)
    raise MissingModelError(
        f"the unknown mask model `{request.mask_model}`", masks / f"{request.mask_model}.onnx"
    )


def grow_or_shrink(mask: Image.Image, amount: int) -> Image.Image:
    """`|amount|` passes of a 3×3 max (dilate, amount > 0) or min (erode) filter, as Fooocus's cv2 calls.

    The passes equal one (2·|amount|+1)-pixel square filter, at a fraction of its cost.
    """
    rank = ImageFilter.MaxFilter(3) if amount > 0 else ImageFilter.MinFilter(3)
    for _ in range(abs(amount)):
        mask = mask.filter(rank)
    return mask


_sessions: dict[tuple[Path, float], Any] = {}
_sessions_lock = threading.Lock()


def onnx_session(path: Path, what: str, error: type[RuntimeError]) -> Any:
    """An onnxruntime session for `path`, kept per file (and its modification time)."""
    key = (path, path.stat().st_mtime)
    with _sessions_lock:
        session = _sessions.get(key)
        if session is None:
            import onnxruntime as ort

            wanted = ("CUDAExecutionProvider", "CPUExecutionProvider")
            providers = [name for name in wanted if name in ort.get_available_providers()]
            try:
                session = ort.InferenceSession(str(path), providers=providers)
            except Exception as failure:  # a truncated download or not an ONNX file at all
                raise error(f"{what} `{path.name}` cannot be loaded by onnxruntime: {failure}") from None
            for old in [old for old in _sessions if old[0] == path]:
                del _sessions[old]
            _sessions[key] = session
        return session


def static_side(dimension: object, default: int) -> int:
    return dimension if isinstance(dimension, int) and dimension > 0 else default


def _run_rembg_model(path: Path, request: MaskOptions, image: Image.Image) -> Image.Image:
    session = onnx_session(path, f"the `{request.mask_model}` mask model", MaskUnavailableError)
    model_input = session.get_inputs()[0]
    shape = list(model_input.shape)
    default = DEFAULT_SIDES.get(request.mask_model, DEFAULT_SIDE)
    height = static_side(shape[2] if len(shape) == 4 else None, default)
    width = static_side(shape[3] if len(shape) == 4 else None, default)
    std = UNIT_STD if request.mask_model.startswith("isnet") else IMAGENET_STD
    # As rembg does: resize to the model's side, scale by the image's brightest value (not by 255),
    # then subtract the per-channel mean and divide by the std; channels first, float32.
    pixels = np.asarray(image.resize((width, height), Image.Resampling.LANCZOS), dtype=np.float32)
    pixels = pixels / max(float(pixels.max()), 1.0)
    pixels = (pixels - np.array(IMAGENET_MEAN, np.float32)) / np.array(std, np.float32)
    batch = pixels.transpose(2, 0, 1)[None].astype(np.float32)
    try:
        output = np.asarray(session.run(None, {model_input.name: batch})[0], dtype=np.float32)
    except Exception as failure:
        raise MaskUnavailableError(
            f"the `{request.mask_model}` mask model failed to run: {failure}"
        ) from None
    if output.ndim != 4:
        raise MaskUnavailableError(
            f"the `{request.mask_model}` mask model gave an output of shape {output.shape}; expected N×C×H×W"
        )
    if request.mask_model == "u2net_cloth_seg":
        if output.shape[1] <= max(CLOTH_CLASSES.values()):
            raise MaskUnavailableError(
                f"the `u2net_cloth_seg` model gave {output.shape[1]} classes; expected 4 (background + 3)"
            )
        classes = output[0].argmax(axis=0)
        chosen = (classes == CLOTH_CLASSES[request.cloth_category]).astype(np.uint8) * 255
        return Image.fromarray(chosen).resize(image.size, Image.Resampling.NEAREST)
    prediction = output[0, 0]
    low, high = float(prediction.min()), float(prediction.max())
    scaled = (prediction - low) / (high - low) if high > low else np.zeros_like(prediction)
    grey = Image.fromarray((scaled * 255).round().astype(np.uint8))
    return grey.resize(image.size, Image.Resampling.BILINEAR)
