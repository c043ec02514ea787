"""GroundingDINO + SAM masks on tiny random-weight models: boxes by threshold and cap, the union of SAM
masks, and the message for missing folders (the enhance tabs are in `engine/test_jobs.py`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from contracts import MaskOptions
from tests.worker.tiny_grounded_sam import write_tiny_grounded_sam
from worker.engine.folders import MissingModelError, ModelFolders
from worker.engine.grounded_sam import detect, dino_caption, model_folders, segment
from worker.engine.masks import generate_mask


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("grounded-sam")
    write_tiny_grounded_sam(root)
    return root


def picture() -> Image.Image:
    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)
    pixels[16:48, 20:60] = (230, 190, 150)
    return Image.fromarray(pixels)


def test_the_caption_is_lower_case_and_ends_with_a_period() -> None:
    assert dino_caption(" Face ") == "face." and dino_caption("eye.") == "eye."


def test_boxes_follow_the_threshold_and_the_detection_cap(models: Path) -> None:
    dino, _ = model_folders(ModelFolders(models), "vit_b")
    image = picture()
    every = detect(dino, image, "face", 0.0, 0.0, 0)
    assert every.shape == (10, 4)  # every query of the tiny model scores above 0
    assert (every[:, 0] <= every[:, 2]).all() and (every[:, 2] <= image.width + 1e-3).all()
    top_two = detect(dino, image, "face", 0.0, 0.0, 2)
    assert torch.equal(top_two, every[:2])  # the cap keeps the best scoring boxes
    assert detect(dino, image, "face", 1.0, 0.0, 0).shape == (0, 4)  # no score exceeds 1
    assert detect(dino, image, "  ", 0.0, 0.0, 0).shape == (0, 4)


def test_the_mask_is_the_union_of_one_sam_mask_per_box(models: Path) -> None:
    dino, sam = model_folders(ModelFolders(models), "vit_b")
    image = picture()
    boxes = detect(dino, image, "face", 0.0, 0.0, 3)
    union = segment(sam, image, boxes)
    separately = [segment(sam, image, box[None]) for box in boxes]
    assert union.shape == (64, 80) and (union == np.logical_or.reduce(separately)).all()
    assert not segment(sam, image, boxes[:0]).any()


def test_generate_mask_with_sam_runs_end_to_end(models: Path) -> None:
    folders = ModelFolders(models)
    request = MaskOptions(mask_model="sam", dino_prompt_text="face", box_threshold=0.0, sam_max_detections=1)
    mask = generate_mask(folders, picture(), request)
    assert mask.size == (80, 64) and mask.mode == "L" and set(np.unique(np.asarray(mask))) <= {0, 255}
    grown = generate_mask(folders, picture(), request.model_copy(update={"dino_erode_or_dilate": 2}))
    assert (np.asarray(grown) >= np.asarray(mask)).all()
    nothing = generate_mask(folders, picture(), request.model_copy(update={"box_threshold": 1.0}))
    assert not np.asarray(nothing).any()


def test_missing_folders_are_named_with_what_to_put_there(models: Path, tmp_path: Path) -> None:
    with pytest.raises(MissingModelError) as failure:
        generate_mask(ModelFolders(tmp_path), picture(), MaskOptions(mask_model="sam", sam_model="vit_l"))
    message = str(failure.value)
    for part in (
        "grounding-dino/grounding-dino-tiny",
        "sam/vit_l",
        "IDEA-Research/grounding-dino-tiny",
        "facebook/sam-vit-large",
        "groundingdino_swint_ogc.pth",
        "sam_vit_l_0b3195.pth",
        "Hugging Face format",
    ):
        assert part in message
    with pytest.raises(ValueError, match="unknown SAM model `vit_x`"):
        generate_mask(ModelFolders(models), picture(), MaskOptions(mask_model="sam", sam_model="vit_x"))
