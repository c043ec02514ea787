from __future__ import annotations

import pytest
import torch

from worker.engine.guidance.cfg import CfgSettings, fooocus_cfg, sharpness_alpha
from worker.engine.guidance.sharpness import adaptive_anisotropic_filter


def _constant(value: float) -> torch.Tensor:
    return torch.full((1, 1, 8, 8), value)


@pytest.fixture
def halves() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(9)
    uncond, cond, guide = (torch.randn((1, 4, 8, 8), generator=generator, dtype=torch.float64) for _ in "ucg")
    return uncond, cond, guide


def test_sharpness_zero_below_adaptive_cfg_is_plain_cfg(halves: tuple[torch.Tensor, ...]) -> None:
    uncond, cond, guide = halves

    final = fooocus_cfg(uncond, cond, guide, CfgSettings(4.0, 0.0, 7.0), progress=0.6)

    torch.testing.assert_close(final, uncond + 4.0 * (cond - uncond))


def test_cfg_up_to_adaptive_cfg_is_not_mimicked() -> None:
    uncond, cond, guide = _constant(1.0), _constant(3.0), _constant(0.0)

    final = fooocus_cfg(uncond, cond, guide, CfgSettings(7.0, 0.0, 7.0), progress=0.1)

    assert torch.all(final == 1.0 + 7.0 * 2.0)


@pytest.mark.parametrize(("progress", "expected"), [(0.0, 15.0), (0.25, 16.5), (1.0, 21.0)])
def test_cfg_above_adaptive_cfg_mimics_by_progress(progress: float, expected: float) -> None:
    # uncond 1, cond 3, cfg 10, adaptive 7: real 21, mimicked 15; at p=0.25, 0.25*21 + 0.75*15 = 16.5.
    uncond, cond, guide = _constant(1.0), _constant(3.0), _constant(0.0)

    final = fooocus_cfg(uncond, cond, guide, CfgSettings(10.0, 0.0, 7.0), progress=progress)

    torch.testing.assert_close(final, _constant(expected))


def test_sharpness_blends_in_the_filtered_cond(halves: tuple[torch.Tensor, ...]) -> None:
    uncond, cond, guide = halves
    assert sharpness_alpha(30.0, 0.5) == pytest.approx(0.015)
    assert sharpness_alpha(2.0, 1.0) == pytest.approx(0.002)

    final = fooocus_cfg(uncond, cond, guide, CfgSettings(5.0, 30.0, 7.0), progress=0.5)

    sharpened = 0.015 * adaptive_anisotropic_filter(cond, guide) + 0.985 * cond
    torch.testing.assert_close(final, uncond + 5.0 * (sharpened - uncond))
    assert not torch.allclose(final, uncond + 5.0 * (cond - uncond))


def test_cfg_one_returns_the_cond_alone(halves: tuple[torch.Tensor, ...]) -> None:
    uncond, cond, guide = halves

    final = fooocus_cfg(uncond, cond, guide, CfgSettings(1.0, 30.0, 7.0), progress=0.9)

    assert final is cond  # no sharpness, no mimicking: Fooocus's cfg==1 shortcut
