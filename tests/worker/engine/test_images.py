"""Masks, outpaint canvases, pasting back, and the PyraCanny/CPDS preprocessors (no model needed)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from worker.engine.images import binary_mask, erode_or_dilate, outpaint, paste_outside_mask, round_to
from worker.engine.preprocessors import canny, cpds, fit_control_image, pyramid_canny


def square(size: int = 64, value: int = 255) -> Image.Image:
    image = Image.new("L", (size, size), 0)
    image.paste(value, (16, 16, 48, 48))
    return image


def test_sizes_round_to_multiples_of_eight() -> None:
    assert [round_to(v) for v in (1, 60, 83, 96.4)] == [8, 64, 80, 96]


def test_a_mask_is_white_above_127_resized_and_alpha_aware() -> None:
    assert binary_mask(square(value=127), (64, 64)).sum() == 0
    assert binary_mask(square(value=128), (64, 64)).sum() == 32 * 32
    resized = binary_mask(square(), (128, 128))  # another size is resized, not an error
    assert resized.shape == (128, 128) and 3800 < resized.sum() < 4400
    rgba = Image.new("RGBA", (64, 64), (255, 255, 255, 0))
    rgba.paste((255, 255, 255, 255), (0, 0, 8, 8))
    assert binary_mask(rgba, (64, 64)).sum() == 64  # transparent white is not a stroke


def test_erode_and_dilate_grow_or_shrink_by_one_pixel_per_pass() -> None:
    mask = binary_mask(square(), (64, 64))
    assert erode_or_dilate(mask, 2).sum() == 36 * 36
    assert erode_or_dilate(mask, -3).sum() == 26 * 26
    assert (erode_or_dilate(mask, 0) == mask).all()


def test_outpaint_pads_with_edge_pixels_and_masks_the_padding() -> None:
    image = Image.new("RGB", (100, 50), (10, 20, 30))
    canvas, mask = outpaint(image, np.zeros((50, 100), bool), ["Top", "Bottom", "Right"], {"Right": 7})
    assert canvas.size == (107, 50 + 2 * 15)
    assert mask.sum() == canvas.width * canvas.height - 100 * 50
    assert np.asarray(canvas)[0, 0].tolist() == [10, 20, 30]


def test_paste_keeps_the_original_outside_the_mask() -> None:
    original = Image.new("RGB", (64, 64), (1, 2, 3))
    mask = binary_mask(square(), (64, 64))
    out = np.asarray(paste_outside_mask(original, Image.new("RGB", (64, 64), (200, 0, 0)), mask))
    assert out[0, 0].tolist() == [1, 2, 3] and out[32, 32].tolist() == [200, 0, 0]


def test_canny_finds_the_outline_of_a_square_between_its_thresholds() -> None:
    edges = canny(np.asarray(square()), 64, 128)
    assert edges[32, 15] or edges[32, 16]  # the left border
    assert not edges[32, 32] and not edges[2, 2]  # nothing inside or in the flat background
    assert not canny(np.asarray(square(value=20)), 100, 200).any()  # too weak for the thresholds


def test_pyracanny_and_cpds_give_grey_structure_maps_of_the_image_size() -> None:
    image = fit_control_image(
        Image.merge("RGB", [square(), square(value=90), Image.new("L", (64, 64))]), (48, 40)
    )
    assert image.size == (48, 40)
    for hint in (pyramid_canny(image, 64, 128), cpds(image)):
        array = np.asarray(hint)
        assert hint.size == (48, 40) and hint.mode == "RGB"
        assert (array[..., 0] == array[..., 1]).all() and array.max() > array.min()
