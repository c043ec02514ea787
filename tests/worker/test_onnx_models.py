"""The rembg-style mask models and the WD14 tagger, run with onnxruntime on tiny stand-in graphs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from contracts import MaskOptions
from tests.worker.tiny_onnx import write_tiny_cloth_model, write_tiny_mask_models, write_tiny_tagger
from worker.engine.describe import Describer, DescribeUnavailableError, prompt_tag
from worker.engine.folders import MissingModelError, ModelFolders
from worker.engine.masks import MaskUnavailableError, generate_mask

TAGS_CSV = """tag_id,name,category,count
9999999,general,9,100
1,long_hair,0,90
2,smile,0,80
3,^_^,0,70
4,hatsune_miku_(vocaloid),4,60
"""
# rating, general above, general below 0.35, general above (a kaomoji), character above 0.85
SCORES = (0.9, 0.5, 0.3, 0.8, 0.95)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("onnx-models")
    write_tiny_mask_models(root / "masks")
    write_tiny_cloth_model(root / "masks" / "u2net_cloth_seg.onnx")
    write_tiny_tagger(root / "captioners" / "wd-v1-4-moat-tagger-v2.onnx", SCORES)
    (root / "captioners" / "wd-v1-4-moat-tagger-v2.csv").write_text(TAGS_CSV)
    return root


def white_square() -> Image.Image:
    """100×80 black with a white 40×40 square at (30, 20)."""
    image = Image.new("RGB", (100, 80), (0, 0, 0))
    image.paste((255, 255, 255), (30, 20, 70, 60))
    return image


def lit(mask: Image.Image) -> int:
    return int((np.asarray(mask) > 127).sum())


@pytest.mark.parametrize("model", ["isnet-general-use", "u2net"])
def test_a_mask_model_lights_the_bright_square_at_the_image_size(models: Path, model: str) -> None:
    mask = generate_mask(ModelFolders(models), white_square(), MaskOptions(mask_model=model))
    assert mask.mode == "L" and mask.size == (100, 80)
    pixels = np.asarray(mask)
    assert pixels[25:55, 35:65].min() > 200 and pixels[:15].max() < 50 and pixels[:, :25].max() < 50
    assert 1400 < lit(mask) < 1800  # about the 40×40 square


def test_dilate_grows_the_mask_and_erode_shrinks_it(models: Path) -> None:
    folders = ModelFolders(models)
    plain, grown, shrunk = (
        generate_mask(folders, white_square(), MaskOptions(mask_model="u2net", dino_erode_or_dilate=amount))
        for amount in (0, 5, -5)
    )
    assert lit(shrunk) < lit(plain) < lit(grown)
    assert np.asarray(grown)[20, 26] > 200 and np.asarray(shrunk)[22, 32] < 50


def test_cloth_segmentation_picks_the_category(models: Path) -> None:
    folders = ModelFolders(models)
    full = generate_mask(folders, white_square(), MaskOptions(mask_model="u2net_cloth_seg"))
    assert full.size == (100, 80) and np.asarray(full)[25:55, 35:65].min() == 255 and 1300 < lit(full) < 1900
    upper = generate_mask(
        folders, white_square(), MaskOptions(mask_model="u2net_cloth_seg", cloth_category="upper")
    )
    assert lit(upper) == 0
    with pytest.raises(ValueError, match="cloth category `hat`"):
        generate_mask(
            folders, white_square(), MaskOptions(mask_model="u2net_cloth_seg", cloth_category="hat")
        )


def test_a_missing_or_broken_mask_model_is_named(models: Path, tmp_path: Path) -> None:
    with pytest.raises(MissingModelError, match=r"`silueta\.onnx` in .*masks"):
        generate_mask(ModelFolders(models), white_square(), MaskOptions(mask_model="silueta"))
    (tmp_path / "masks").mkdir()
    (tmp_path / "masks" / "u2netp.onnx").write_bytes(b"not onnx")
    with pytest.raises(MaskUnavailableError, match=r"`u2netp\.onnx` cannot be loaded"):
        generate_mask(ModelFolders(tmp_path), white_square(), MaskOptions(mask_model="u2netp"))


def test_sam_without_its_folders_fails_naming_fooocus_files_too(models: Path) -> None:
    with pytest.raises(MissingModelError, match=r"groundingdino_swint_ogc\.pth"):
        generate_mask(ModelFolders(models), white_square(), MaskOptions(mask_model="sam"))


def test_the_tagger_keeps_characters_then_general_tags_over_their_thresholds(models: Path) -> None:
    describer = Describer(ModelFolders(models))
    white = Image.new("RGB", (40, 30), (255, 255, 255))
    assert describer.describe(white, "Anime") == "hatsune miku \\(vocaloid\\), ^_^, long hair"
    # black on white padding: a quarter of the square is white, so every score falls below its threshold
    assert describer.describe(Image.new("RGB", (40, 30), (0, 0, 0)), "Anime") == ""


def test_the_tagger_needs_both_files_and_matching_rows(models: Path, tmp_path: Path) -> None:
    image = Image.new("RGB", (8, 8), (255, 255, 255))
    write_tiny_tagger(tmp_path / "captioners" / "wd-v1-4-moat-tagger-v2.onnx", SCORES[:2], side=16)
    with pytest.raises(MissingModelError, match=r"`wd-v1-4-moat-tagger-v2\.csv` in"):
        Describer(ModelFolders(tmp_path)).describe(image, "Anime")
    (tmp_path / "captioners" / "wd-v1-4-moat-tagger-v2.csv").write_text(TAGS_CSV)
    with pytest.raises(DescribeUnavailableError, match=r"gives 2 scores but .* names 5 tags"):
        Describer(ModelFolders(tmp_path)).describe(image, "Anime")


def test_tag_names_become_prompt_words() -> None:
    assert [prompt_tag(name) for name in ("long_hair", "o_o", "(o)_(o)", "1girl", "star_(symbol)")] == [
        "long hair",
        "o_o",
        "\\(o\\)_\\(o\\)",
        "1girl",
        "star \\(symbol\\)",
    ]
