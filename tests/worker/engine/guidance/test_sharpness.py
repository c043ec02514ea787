from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from worker.engine.guidance.sharpness import adaptive_anisotropic_filter, gaussian_window


def _reflect(index: int, size: int) -> int:
    # Mirror without repeating the edge: -1 → 1, size → size-2.
    if index < 0:
        return -index
    if index >= size:
        return 2 * (size - 1) - index
    return index


def _reference_filter(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """The filter written out pixel by pixel from its definition (fooocus-engine.md §4.2)."""
    out = np.zeros_like(x)
    batch, channels, height, width = x.shape
    for b in range(batch):
        mean = g[b].mean()
        std = math.sqrt(((g[b] - mean) ** 2).sum() / (g[b].size - 1))
        guide = (g[b] - mean) / (std + 1e-5)
        for i in range(height):
            for j in range(width):
                total = np.zeros(channels)
                norm = 0.0
                for di in range(-6, 7):
                    for dj in range(-6, 7):
                        ni, nj = _reflect(i + di, height), _reflect(j + dj, width)
                        distance = np.abs(guide[:, ni, nj] - guide[:, i, j]).sum()
                        weight = math.exp(-0.5 * distance**2 / 9) * math.exp(-(di**2 + dj**2) / 18)
                        total += weight * x[b, :, ni, nj]
                        norm += weight
                out[b, :, i, j] = total / norm
    return out


def test_filter_matches_a_per_pixel_reference() -> None:
    generator = torch.Generator().manual_seed(3)
    x = torch.randn((2, 3, 8, 9), generator=generator, dtype=torch.float64)
    g = torch.randn((2, 3, 8, 9), generator=generator, dtype=torch.float64) * 4 + 1

    filtered = adaptive_anisotropic_filter(x, g)

    expected = _reference_filter(x.numpy(), g.numpy())
    assert filtered.dtype == torch.float64
    np.testing.assert_allclose(filtered.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_filter_ignores_the_guides_scale_and_keeps_constants() -> None:
    generator = torch.Generator().manual_seed(4)
    x = torch.randn((1, 4, 8, 8), generator=generator)
    g = torch.randn((1, 4, 8, 8), generator=generator)

    # A positive multiple of the guide standardizes to the same guide (up to its tiny epsilon).
    torch.testing.assert_close(adaptive_anisotropic_filter(x, g), adaptive_anisotropic_filter(x, g * 7.5))
    flat = torch.full((1, 4, 8, 8), 0.25)
    torch.testing.assert_close(adaptive_anisotropic_filter(flat, g), flat)


def test_gaussian_window_is_normalized_and_centred() -> None:
    window = gaussian_window(13, 3.0, device=torch.device("cpu"), dtype=torch.float64).view(13, 13)

    assert window.sum().item() == pytest.approx(1.0)
    assert window.argmax().item() == 6 * 13 + 6
    assert (window[6, 7] / window[6, 6]).item() == pytest.approx(math.exp(-1 / 18))
