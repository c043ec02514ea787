"""Masks, outpaint canvases, pasting back, and the PyraCanny/CPDS preprocessors (no model needed)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from worker.engine.images import (
    binary_mask,
    erode_or_dilate,
    outpaint,
    paste_outside_mask,
    round_to,
    set_shape_ceil,
    shape_for_ceil,
)
from worker.engine.img2img import FAST_2X, ShapeLimits, uov_source, upscale_source, vary_source
from worker.engine.inpaint import crop_box
from worker.engine.preprocessors import canny, cpds, fit_control_image, pyramid_canny


def square(size: int = 64, value: int = 255) -> Image.Image:
    image = Image.new("L", (size, size), 0)
    image.paste(value, (16, 16, 48, 48))
    return image


def test_sizes_round_to_multiples_of_eight() -> None:
    assert [round_to(v) for v in (1, 60, 83, 96.4)] == [8, 64, 80, 96]


def test_shape_ceil_sizes_are_fooocus_multiples_of_64() -> None:
    # By hand: 600² has ceil 640 → ×1.6 = 960 (ceil 960) → ×1024/960 = 1024.
    assert shape_for_ceil(600, 600, 1024) == (1024, 1024)
    # 3000×2000: ceil 2496 → ×2048/2496 → 2432×1664, whose sqrt(area) 2011.7 has ceil 2048.
    assert shape_for_ceil(3000, 2000, 2048) == (2432, 1664)
    assert shape_for_ceil(1000, 1000, 1024) == (1000, 1000)  # already at the ceil: untouched
    assert shape_for_ceil(200, 100, 128) == (128, 64)
    image = Image.new("RGB", (1000, 1000))
    assert set_shape_ceil(image, 1024) is image and set_shape_ceil(image, 2048).size == (2048, 2048)


def test_vary_and_upscale_sizes_follow_fooocus_ceilings() -> None:
    sdxl, tiny = ShapeLimits(1024), ShapeLimits(64)
    assert (sdxl.min_ceil, sdxl.max_vary_ceil, sdxl.direct_sr_ceil) == (1024, 2048, 2800)
    assert (tiny.min_ceil, tiny.max_vary_ceil, tiny.direct_sr_ceil) == (64, 128, 175)
    small = Image.new("RGB", (64, 64))
    assert vary_source(small, sdxl).size == (1024, 1024)  # raised to the native ceil
    assert vary_source(Image.new("RGB", (3000, 2000)), sdxl).size == (2432, 1664)  # capped at 2048
    assert vary_source(Image.new("RGB", (200, 100)), tiny).size == (128, 64)
    assert vary_source(small, tiny).size == (64, 64)
    same = lambda image: image  # noqa: E731 (no super-resolution model)
    # 2x of 64² has ceil 128 < 1024: Fooocus resizes to the native ceil, even for Fast 2x.
    assert upscale_source(small, 2.0, sdxl, same)[0].size == (1024, 1024)
    assert uov_source(small, FAST_2X, None, sdxl, same)[0].size == (1024, 1024)
    fast, direct = uov_source(small, FAST_2X, None, tiny, same)
    assert fast.size == (128, 128) and direct
    # int(W·f) × int(H·f), then multiples of 8 for the diffusion: 60×30 → 64×32.
    upscaled, direct = uov_source(Image.new("RGB", (40, 20)), "Upscale (1.5x)", None, tiny, same)
    assert upscaled.size == (64, 32) and not direct
    huge, direct = uov_source(Image.new("RGB", (1500, 1500)), "Upscale (2x)", None, sdxl, same)
    assert huge.size == (3000, 3000) and direct  # ceil 3008 > 2800: returned without diffusion


def test_the_inpaint_crop_is_a_grown_square_around_the_mask() -> None:
    mask = binary_mask(square(), (64, 64))  # rows and columns 16..47
    assert crop_box(mask, 1.0) == (0, 64, 0, 64)
    # By hand: centre 31, half-side int(15·1.15) = 17 → 14..49 (35 px); grown one pixel per side,
    # alternately, until both sides reach 0.618·64 = 39.6 → 41 px: 11..52.
    assert crop_box(mask, 0.618) == (11, 52, 11, 52)
    corner = np.zeros((64, 64), bool)
    corner[:8, :8] = True  # the box is clipped at the image's edge and grows inwards only
    assert crop_box(corner, 0.5) == (0, 32, 0, 32)


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
