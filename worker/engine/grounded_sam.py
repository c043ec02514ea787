"""Fooocus's `sam` mask model: GroundingDINO finds boxes for a text prompt, SAM turns each box into a
mask, and the mask is their union (fooocus-engine.md §6 point 10).

Both models run with transformers (`GroundingDinoForObjectDetection`, `SamModel`) and load from
folders in Hugging Face format (what `save_pretrained` writes: `config.json`, the weights and the
processor/tokenizer files), not from Fooocus's original checkpoints:

    models/grounding-dino/grounding-dino-tiny/   IDEA-Research/grounding-dino-tiny, the Swin-T OGC model
                                                 Fooocus runs as `groundingdino_swint_ogc.pth`
    models/sam/vit_b/ (or sam-vit-base/)         facebook/sam-vit-base   (Fooocus: sam_vit_b_01ec64.pth)
    models/sam/vit_l/ (or sam-vit-large/)        facebook/sam-vit-large  (Fooocus: sam_vit_l_0b3195.pth)
    models/sam/vit_h/ (or sam-vit-huge/)         facebook/sam-vit-huge   (Fooocus: sam_vit_h_4b8939.pth)

Another GroundingDINO folder is used when `grounding-dino-tiny` is absent (the first by name). As in
Fooocus: the prompt is lower-cased and ends with a period; a box counts when its best token score is
above `box_threshold` (`text_threshold` picks the label tokens); `sam_max_detections` > 0 keeps that
many boxes (here the highest scoring ones); no box gives an empty mask.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from contracts import MaskOptions
from worker.engine.folders import MissingModelError, ModelFolders

DINO_FOLDER = "grounding-dino"
SAM_FOLDER = "sam"
DEFAULT_DINO = "grounding-dino-tiny"
FOOOCUS_DINO_FILE = "groundingdino_swint_ogc.pth"
# sam_model → (Fooocus's file, the Hugging Face repo holding the same weights, its folder name)
SAM_MODELS = {
    "vit_b": ("sam_vit_b_01ec64.pth", "facebook/sam-vit-base"),
    "vit_l": ("sam_vit_l_0b3195.pth", "facebook/sam-vit-large"),
    "vit_h": ("sam_vit_h_4b8939.pth", "facebook/sam-vit-huge"),
}
DINO_REPO = "IDEA-Research/grounding-dino-tiny"


class MissingFolderError(MissingModelError):
    """GroundingDINO or SAM folders are missing; the message names each and what to put there."""

    def __init__(self, what: str, missing: list[tuple[Path, str, str]]) -> None:
        wanted = "; ".join(
            f"`{folder}` (from `{repo}`; Fooocus's `{fooocus}` does not load here)"
            for folder, repo, fooocus in missing
        )
        FileNotFoundError.__init__(
            self,
            f"{what} needs the model folder(s) {wanted}. Put each model there in Hugging Face format (what "
            "`save_pretrained` writes: config.json, the weights and the processor files) and retry",
        )
        self.paths = tuple(folder for folder, _, _ in missing)


@dataclass(frozen=True)
class _Loaded:
    model: Any
    processor: Any


_cache: dict[tuple[str, Path, float], _Loaded] = {}
_cache_lock = threading.Lock()


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _load(kind: str, folder: Path) -> _Loaded:
    """The model and processor in `folder`, kept while the folder's config is unchanged."""
    from transformers import (
        GroundingDinoForObjectDetection,
        GroundingDinoProcessor,
        SamModel,
        SamProcessor,
    )

    key = (kind, folder, (folder / "config.json").stat().st_mtime)
    with _cache_lock:
        if key not in _cache:
            model_cls, processor_cls = (
                (GroundingDinoForObjectDetection, GroundingDinoProcessor)
                if kind == "dino"
                else (SamModel, SamProcessor)
            )
            model = model_cls.from_pretrained(folder).to(_device()).eval()
            for old in [old for old in _cache if old[:2] == (kind, folder)]:
                del _cache[old]
            _cache[key] = _Loaded(model, processor_cls.from_pretrained(folder))
        return _cache[key]


def dino_folder(folders: ModelFolders) -> Path | None:
    """`grounding-dino-tiny`, else the first GroundingDINO folder by name; None when there is none."""
    root = folders.folder(DINO_FOLDER)
    if (root / DEFAULT_DINO / "config.json").is_file():
        return root / DEFAULT_DINO
    others = sorted(p for p in root.iterdir() if (p / "config.json").is_file()) if root.is_dir() else []
    return others[0] if others else None


def sam_folder(folders: ModelFolders, sam_model: str) -> Path | None:
    """`sam/<sam_model>/` or `sam/<its Hugging Face name>/`; None when neither is there."""
    root = folders.folder(SAM_FOLDER)
    for name in (sam_model, SAM_MODELS[sam_model][1].split("/")[1]):
        if (root / name / "config.json").is_file():
            return root / name
    return None


def model_folders(folders: ModelFolders, sam_model: str) -> tuple[Path, Path]:
    """(GroundingDINO, SAM) folders; a `MissingFolderError` names every one that is missing."""
    if sam_model not in SAM_MODELS:
        raise ValueError(f"unknown SAM model `{sam_model}`; expected one of {sorted(SAM_MODELS)}")
    detector, segmenter = dino_folder(folders), sam_folder(folders, sam_model)
    missing: list[tuple[Path, str, str]] = []
    if detector is None:
        missing.append((folders.folder(DINO_FOLDER) / DEFAULT_DINO, DINO_REPO, FOOOCUS_DINO_FILE))
    if segmenter is None:
        fooocus, repo = SAM_MODELS[sam_model]
        missing.append((folders.folder(SAM_FOLDER) / sam_model, repo, fooocus))
    if detector is None or segmenter is None:
        raise MissingFolderError("the `sam` mask model (GroundingDINO + SAM)", missing)
    return detector, segmenter


def dino_caption(prompt: str) -> str:
    """GroundingDINO's caption form: lower case, ending with a period."""
    caption = prompt.lower().strip()
    return caption if caption.endswith(".") else f"{caption}."


@torch.no_grad()
def detect(
    folder: Path, image: Image.Image, prompt: str, box_threshold: float, text_threshold: float, limit: int
) -> torch.Tensor:
    """Boxes (N×4, x0 y0 x1 y1 in pixels of `image`) for `prompt`, best first, at most `limit` (0 = all)."""
    if not prompt.strip():
        return torch.zeros((0, 4))  # nothing asked for, nothing found
    loaded = _load("dino", folder)
    inputs = loaded.processor(images=image, text=dino_caption(prompt), return_tensors="pt").to(_device())
    outputs = loaded.model(**inputs)
    [found] = loaded.processor.post_process_grounded_object_detection(
        outputs,
        inputs["input_ids"],
        threshold=box_threshold,
        text_threshold=text_threshold,
        target_sizes=[(image.height, image.width)],
    )
    order = torch.argsort(found["scores"], descending=True)
    boxes = found["boxes"][order].float().cpu()
    return boxes[:limit] if limit > 0 else boxes


@torch.no_grad()
def segment(folder: Path, image: Image.Image, boxes: torch.Tensor) -> np.ndarray:
    """The union of SAM's mask for each box, as a bool array of `image`'s size (H×W)."""
    if len(boxes) == 0:
        return np.zeros((image.height, image.width), dtype=bool)
    loaded = _load("sam", folder)
    inputs = loaded.processor(images=image, input_boxes=[boxes.tolist()], return_tensors="pt").to(_device())
    outputs = loaded.model(**inputs, multimask_output=False)
    [masks] = loaded.processor.image_processor.post_process_masks(
        outputs.pred_masks.cpu(), inputs["original_sizes"].cpu(), inputs["reshaped_input_sizes"].cpu()
    )
    return masks[:, 0].any(dim=0).numpy()


def sam_mask(folders: ModelFolders, image: Image.Image, request: MaskOptions) -> Image.Image:
    """A white-on-black "L" mask of what GroundingDINO + SAM find for `request.dino_prompt_text`."""
    detector, segmenter = model_folders(folders, request.sam_model)
    image = image.convert("RGB")
    boxes = detect(
        detector,
        image,
        request.dino_prompt_text,
        request.box_threshold,
        request.text_threshold,
        request.sam_max_detections,
    )
    return Image.fromarray(segment(segmenter, image, boxes).astype(np.uint8) * 255, "L")
