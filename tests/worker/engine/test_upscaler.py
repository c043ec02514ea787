"""The ESRGAN super-resolution model: every key naming loads, matches a reference forward, tiles, and
runs inside the upscale jobs."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from contracts import ImageInputs
from tests.worker.engine.support import make_params, pixels
from tests.worker.engine.test_jobs import SOURCE, run, source_image
from tests.worker.tiny_upscaler import reference_forward, state_dict, tiny_rrdb_weights, write_tiny_upscaler
from worker.engine import upscaler
from worker.engine.folders import ModelFolders
from worker.engine.jobs import JobEngine, JobImages
from worker.engine.sdxl import SDXLEngine
from worker.engine.upscaler import (
    FOOOCUS_UPSCALER,
    UpscalerError,
    build_upscaler,
    load_upscaler,
    run_tiled,
    super_resolve,
)

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("naming", "file", "ups", "unshuffle", "scale"),
    [
        ("fooocus", FOOOCUS_UPSCALER, 2, 1, 4),
        ("esrgan", "4x_esrgan.pth", 2, 1, 4),
        ("basicsr", "RealESRGAN_x4plus.safetensors", 2, 1, 4),
        ("basicsr", "RealESRGAN_x2plus.pth", 2, 2, 2),  # pixel-unshuffled input
    ],
)
def test_every_naming_loads_and_matches_the_reference_forward(
    tmp_path: Path, naming: str, file: str, ups: int, unshuffle: int, scale: int
) -> None:
    weights = tiny_rrdb_weights(ups=ups, unshuffle=unshuffle)
    model = load_upscaler(write_tiny_upscaler(tmp_path / file, weights, naming), CPU, torch.float32)
    assert model.scale == scale and len(model.blocks) == 2
    x = torch.rand(1, 3, 12, 10, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(model(x), reference_forward(weights, x), atol=1e-5)
    image = source_image(16)
    enlarged = super_resolve(model, image)
    lanczos = image.resize(enlarged.size, Image.Resampling.LANCZOS)
    assert enlarged.size == (16 * scale, 16 * scale)
    assert np.abs(pixels(enlarged) - pixels(lanczos)).mean() > 5


def test_tiles_blend_to_the_untiled_result() -> None:
    model = build_upscaler(state_dict(tiny_rrdb_weights(ups=1, blocks=1), "basicsr"))
    x = torch.rand(1, 3, 40, 48, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        whole = model(x)
    tiled = run_tiled(model, x, tile=32, overlap=16)  # 2×2 tiles, each padded at its own borders
    assert tiled.shape == whole.shape == (1, 3, 80, 96)
    difference = (tiled - whole).abs()
    # Only the seams differ (zero padding inside the image); misplaced or unweighted tiles give ~0.2.
    assert difference.mean() < 0.01 and difference.max() < 0.2


def test_a_file_that_is_not_an_rrdbnet_fails_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save({"encoder.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(UpscalerError, match=r"`other\.pth` is not an ESRGAN RRDBNet"):
        load_upscaler(path, CPU, torch.float32)


def test_the_upscale_jobs_super_resolve_before_lanczos(
    engine: SDXLEngine, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = tiny_rrdb_weights(ups=2, blocks=1)
    write_tiny_upscaler(tmp_path / "upscale_models" / FOOOCUS_UPSCALER, weights, "fooocus")
    with_model = JobEngine(engine, ModelFolders(tmp_path))
    without = JobEngine(engine, ModelFolders(tmp_path / "empty"))
    source = source_image()
    fast = JobImages(ImageInputs(input_image_key=SOURCE, uov_method="Upscale (Fast 2x)"), {SOURCE: source})
    [result], _ = run(with_model.upscale_or_vary, make_params(), fast, [1])
    with caplog.at_level(logging.WARNING):
        [plain], _ = run(without.upscale_or_vary, make_params(), fast, [1])
    assert f"no super-resolution model in `{tmp_path / 'empty' / 'upscale_models'}`" in caplog.text
    model = build_upscaler(state_dict(weights, "basicsr"))
    expected = super_resolve(model, source).resize((128, 128), Image.Resampling.LANCZOS)
    assert result.image.size == plain.image.size == (128, 128)
    assert (pixels(result.image) == pixels(expected)).all()
    assert np.abs(pixels(result.image) - pixels(plain.image)).mean() > 5
    calls: list[tuple[int, int]] = []

    def counted(model, image):  # type: ignore[no-untyped-def]
        calls.append(image.size)
        return super_resolve(model, image)

    monkeypatch.setattr(upscaler, "super_resolve", counted)
    refined = JobImages(ImageInputs(input_image_key=SOURCE, uov_method="Upscale (2x)"), {SOURCE: source})
    upscaled, steps = run(with_model.upscale_or_vary, make_params(steps=2), refined, [1, 2])
    assert [g.image.size for g in upscaled] == [(128, 128)] * 2 and len(steps) == 4
    assert calls == [(64, 64)]  # once per job, not per image
