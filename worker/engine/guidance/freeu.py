"""FreeU V2 as Fooocus (ComfyUI's `FreeU_V2`) applies it, on diffusers up-blocks (fooocus-engine.md §4.6).

Before each decoder resnet the hidden state h meets its skip connection. For the two deepest levels
FreeU V2 scales the first half of h's channels by `(b-1)*m + 1`, m being h's channel mean min-max
normalized over the image (the "structure-aware" V2 scale; diffusers' `enable_freeu` is V1, a
constant b), and damps the low frequencies of the skip by `s` (`fourier_filter`, threshold 1).

ComfyUI picks the level by h's channel count: 4×model channels (1280 in SDXL) → (b1, s1), 2× (640)
→ (b2, s2). In diffusers that count is reached by every resnet of up_blocks[0], the first resnet of
up_blocks[1] (h still comes from the level above) and the rest of up_blocks[1], and the first resnet
of up_blocks[2]. We key on the level h's channels come from, counted from the deepest, which is
the same set in SDXL and stays right for models whose levels share a width (the tiny test model's
block_out_channels are (32, 64, 64): keyed on the count, 64 would hit both levels).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from diffusers.utils.torch_utils import fourier_filter


@dataclass(frozen=True, slots=True)
class FreeU:
    """`advanced_params.freeu_b1/b2/s1/s2`: backbone and skip factors of the two deepest levels."""

    b1: float = 1.01
    b2: float = 1.02
    s1: float = 0.99
    s2: float = 0.95

    def level(self, depth: int) -> tuple[float, float] | None:
        """(b, s) for the level `depth` steps below the deepest (0 = deepest), or None."""
        return {0: (self.b1, self.s1), 1: (self.b2, self.s2)}.get(depth)


def structure_scaled(h: torch.Tensor, b: float) -> torch.Tensor:
    """h with its first half of channels times `(b-1)*m + 1`, m = channel mean normalized to [0, 1]."""
    mean = h.mean(dim=1, keepdim=True)
    flat = mean.flatten(1)
    low = flat.min(dim=1).values.view(-1, 1, 1, 1)
    high = flat.max(dim=1).values.view(-1, 1, 1, 1)
    normalized = (mean - low) / (high - low)
    half = h.shape[1] // 2
    return torch.cat([h[:, :half] * ((b - 1) * normalized + 1), h[:, half:]], dim=1)


def freeu_v2(h: torch.Tensor, skip: torch.Tensor, b: float, s: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One decoder junction: the scaled backbone and the low-frequency-damped skip."""
    return structure_scaled(h, b), fourier_filter(skip, threshold=1, scale=s).to(skip.dtype)


def junctions(layers: list[int]) -> Iterator[tuple[int, int, int]]:
    """(up block, resnet, depth of h's level) for every decoder resnet.

    `layers[i]` is the resnet count of up block i. h enters resnet 0 of block i from block i-1 (or
    from the mid block for block 0), and every later resnet from block i itself.
    """
    for block, count in enumerate(layers):
        for resnet in range(count):
            yield block, resnet, (max(block - 1, 0) if resnet == 0 else block)


@contextmanager
def freeu_installed(unet: Any, settings: FreeU) -> Iterator[None]:
    """FreeU V2 on `unet`'s decoder for the duration of the block (forward pre-hooks, then removed)."""
    widths = list(reversed(unet.config.block_out_channels))
    layers = [len(block.resnets) for block in unet.up_blocks]
    handles = []
    for block, resnet, depth in junctions(layers):
        factors = settings.level(depth)
        if factors is None:
            continue
        hook = _junction_hook(widths[depth], *factors)
        handles.append(unet.up_blocks[block].resnets[resnet].register_forward_pre_hook(hook))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _junction_hook(h_channels: int, b: float, s: float) -> Any:
    def hook(_module: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        joined = args[0]  # the up block's cat([h, skip], dim=1)
        h, skip = freeu_v2(joined[:, :h_channels], joined[:, h_channels:], b, s)
        return (torch.cat([h, skip], dim=1), *args[1:])

    return hook
