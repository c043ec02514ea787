"""Fooocus's VRAM modes: chosen from the free GPU memory under `auto`, refused where they cannot run,
and, on the CPU where offloading moves nothing, the same image in every mode: the engine's own steps
work under diffusers' offload hooks."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from diffusers import StableDiffusionXLPipeline

from tests.worker.engine.conftest import TINY_FILE
from tests.worker.engine.support import make_params, pixels
from worker.engine.sdxl import SDXLEngine
from worker.engine.vram import GIB, TILE_ABOVE_PIXELS, VramMode, choose_vram_mode, tiled_when_large
from worker.settings import WorkerSettings


@pytest.mark.parametrize(
    ("free_gib", "mode"),
    [(79, VramMode.NORMAL), (12, VramMode.NORMAL), (8, VramMode.LOW), (4, VramMode.VERY_LOW)],
)
def test_auto_picks_the_mode_the_free_gpu_memory_allows(free_gib: float, mode: VramMode) -> None:
    assert choose_vram_mode("auto", "cuda", int(free_gib * GIB)) is mode
    assert choose_vram_mode("auto", "cuda:1", int(free_gib * GIB)) is mode


def test_auto_is_normal_off_cuda_and_a_named_mode_is_kept() -> None:
    assert choose_vram_mode("auto", "cpu", None) is VramMode.NORMAL
    assert choose_vram_mode("auto", "mps", None) is VramMode.NORMAL
    assert choose_vram_mode("low", "cuda", 80 * GIB) is VramMode.LOW
    assert choose_vram_mode("very_low", "mps", None) is VramMode.VERY_LOW


def test_a_low_mode_on_the_cpu_and_an_unknown_mode_are_refused() -> None:
    with pytest.raises(ValueError, match="on the CPU use normal"):
        choose_vram_mode("low", "cpu", None)
    with pytest.raises(ValueError, match="'lowvram'"):
        WorkerSettings(_env_file=None, vram="lowvram")  # type: ignore[call-arg]


class TilingVae:
    """Records what `tiled_when_large` switches."""

    config: Any = type("Config", (), {"block_out_channels": (32, 64, 64, 64)})()  # scale 8

    def __init__(self, use_tiling: bool = False) -> None:
        self.use_tiling = use_tiling
        self.calls: list[str] = []

    def enable_tiling(self) -> None:
        self.calls.append("on")

    def disable_tiling(self) -> None:
        self.calls.append("off")


def test_a_large_image_is_decoded_in_tiles_for_itself_only() -> None:
    side = int(TILE_ABOVE_PIXELS**0.5) // 8
    small, large = torch.zeros(1, 4, side, side), torch.zeros(1, 4, side + 8, side + 8)
    vae = TilingVae()
    with tiled_when_large(vae, small):
        assert vae.calls == []
    with tiled_when_large(vae, large):
        assert vae.calls == ["on"]
    assert vae.calls == ["on", "off"]
    always = TilingVae(use_tiling=True)  # a low mode tiles every image: left as it is
    with tiled_when_large(always, large):
        pass
    assert always.calls == []


@pytest.mark.parametrize("mode", [VramMode.LOW, VramMode.VERY_LOW])
def test_an_offloaded_engine_makes_the_same_image(
    tiny_pipeline: StableDiffusionXLPipeline, engine: SDXLEngine, mode: VramMode
) -> None:
    params = make_params(steps=2, size="64*64")
    offloaded = SDXLEngine(copy.deepcopy(tiny_pipeline), model_name=TINY_FILE, vram=mode)
    assert offloaded.pipeline.vae.use_tiling  # the low modes decode in tiles
    [expected] = engine.text_to_image(params, [5], lambda _: None)
    [image] = offloaded.text_to_image(params, [5], lambda _: None)
    assert (pixels(image.image) == pixels(expected.image)).all()
