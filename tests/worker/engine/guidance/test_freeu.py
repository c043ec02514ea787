from __future__ import annotations

import torch

from worker.engine.guidance.freeu import FreeU, freeu_v2, junctions, structure_scaled


def test_v2_scale_follows_the_normalized_channel_mean() -> None:
    plane = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    h = torch.stack([plane, 2 * plane, plane, -plane]).unsqueeze(0)  # channel mean = plane * 1.0

    scaled = structure_scaled(h, b=1.5)

    # mean normalized to [0, 1] is plane/3, so the first half is multiplied by 1 + 0.5*plane/3.
    factor = 1 + 0.5 * plane / 3
    torch.testing.assert_close(scaled[0, 0], plane * factor)
    torch.testing.assert_close(scaled[0, 1], 2 * plane * factor)
    torch.testing.assert_close(scaled[0, 2:], h[0, 2:])  # the second half is untouched


def test_skip_filter_scales_the_lowest_frequencies_only() -> None:
    h = torch.randn((1, 2, 8, 8))
    constant = torch.full((1, 2, 8, 8), 3.0)  # all energy at frequency 0
    checker = (torch.arange(8).view(8, 1) + torch.arange(8).view(1, 8)) % 2 * 2.0 - 1  # Nyquist only
    checker = checker.expand(1, 2, 8, 8)

    _, low = freeu_v2(h, constant, b=1.0, s=0.5)
    _, high = freeu_v2(h, checker, b=1.0, s=0.5)

    torch.testing.assert_close(low, torch.full((1, 2, 8, 8), 1.5))
    torch.testing.assert_close(high, checker)


def test_keying_matches_comfyui_channel_counts_on_sdxl() -> None:
    # SDXL block_out_channels (320, 640, 1280), 3 resnets per up block. ComfyUI keys h's channels:
    # 1280 → (b1, s1), 640 → (b2, s2). h enters resnet 0 from the block above, later ones from its own.
    widths = [1280, 640, 320]
    freeu = FreeU(b1=1.1, b2=1.2, s1=0.9, s2=0.8)
    keyed = {}
    for block, resnet, depth in junctions([3, 3, 3]):
        h_channels = widths[max(block - 1, 0)] if resnet == 0 else widths[block]
        assert widths[depth] == h_channels
        keyed[(block, resnet)] = freeu.level(depth)

    assert [k for k, v in keyed.items() if v == (1.1, 0.9)] == [(0, 0), (0, 1), (0, 2), (1, 0)]
    assert [k for k, v in keyed.items() if v == (1.2, 0.8)] == [(1, 1), (1, 2), (2, 0)]
    assert [k for k, v in keyed.items() if v is None] == [(2, 1), (2, 2)]
