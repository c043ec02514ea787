"""Fooocus's sharpness filter (fooocus-engine.md §4.2): an adaptive anisotropic blur.

It is a joint bilateral blur of a noise prediction, guided by the model's own x0 estimate: pixels are
averaged with neighbours that look alike in the guide, so flat regions are smoothed and edges kept.
Fooocus subtracts this blur through CFG, which sharpens. The blur is linear in its input and the
guide is standardized, so it can run on diffusers noise predictions at any scale.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

KERNEL_SIZE = 13
SIGMA_SPACE = 3.0
SIGMA_COLOR = 3.0
GUIDE_EPSILON = 1e-5  # keeps a flat guide from dividing by zero


def gaussian_window(size: int, sigma: float, *, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The `size`×`size` spatial weights, flattened row by row: the outer product of two normalized
    1-D Gaussians centred on the middle tap."""
    offsets = torch.arange(size, device=device, dtype=dtype) - size // 2
    line = torch.exp(-(offsets**2) / (2 * sigma**2))
    line = line / line.sum()
    return torch.outer(line, line).flatten()


def standardized(guide: torch.Tensor) -> torch.Tensor:
    """Each sample scaled to zero mean and unit (unbiased) standard deviation over (C, H, W)."""
    std, mean = torch.std_mean(guide, dim=(1, 2, 3), keepdim=True)
    return (guide - mean) / (std + GUIDE_EPSILON)


def _windows(tensor: torch.Tensor, size: int) -> torch.Tensor:
    """(B, C, H, W) → (B, C, H, W, size*size): every pixel's neighbourhood, borders reflected."""
    pad = size // 2
    # Reflection needs more pixels than the pad; a latent that small (tiny test models) repeats its edge.
    mode = "reflect" if min(tensor.shape[-2:]) > pad else "replicate"
    padded = F.pad(tensor, (pad, pad, pad, pad), mode=mode)
    return padded.unfold(2, size, 1).unfold(3, size, 1).flatten(-2)


def joint_bilateral_blur(
    x: torch.Tensor,
    guide: torch.Tensor,
    size: int = KERNEL_SIZE,
    sigma_space: float = SIGMA_SPACE,
    sigma_color: float = SIGMA_COLOR,
) -> torch.Tensor:
    """Blur `x` with weights gauss(offset) * exp(-d²/(2σc²)), d = L1 distance of the guide's channels
    between the pixel and its neighbour; weights are normalized per pixel."""
    space = gaussian_window(size, sigma_space, device=x.device, dtype=x.dtype)
    difference = _windows(guide, size) - guide.unsqueeze(-1)
    distance_sq = difference.abs().sum(dim=1, keepdim=True).square()
    weights = torch.exp(-0.5 * distance_sq / sigma_color**2) * space
    return (_windows(x, size) * weights).sum(-1) / weights.sum(-1)


def adaptive_anisotropic_filter(x: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
    """Fooocus's filter: the joint bilateral blur of `x` under the standardized `guide`.

    Computed in float32 (the colour weights underflow quickly in half precision), returned in x's dtype.
    """
    blurred = joint_bilateral_blur(x.float(), standardized(guide.float()))
    return blurred.to(x.dtype)
