"""Fooocus's classifier-free guidance (fooocus-engine.md §4.2): sharpness and CFG mimicking.

Fooocus combines the conditional and unconditional predictions in k-diffusion's x0 space; all of it
is linear at a fixed noisy latent, so the same formulas hold for diffusers' noise predictions.
`progress` is Fooocus's `1 - t/999`: about 0 at the first step, about 1 at the last.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from worker.engine.guidance.sharpness import adaptive_anisotropic_filter


@dataclass(frozen=True, slots=True)
class CfgSettings:
    """The request's CFG fields: `guidance_scale`, `sharpness`, `advanced_params.adaptive_cfg`."""

    guidance_scale: float = 4.0
    sharpness: float = 2.0
    adaptive_cfg: float = 7.0

    @property
    def is_plain_conditional(self) -> bool:
        """CFG 1: Fooocus returns the conditional prediction alone, with no sharpness or mimicking."""
        return math.isclose(self.guidance_scale, 1.0)


def sharpness_alpha(sharpness: float, progress: float) -> float:
    """How much of the blurred prediction replaces the sharp one: grows to 0.001*sharpness at the end."""
    return 0.001 * sharpness * progress


def sharpened(eps_cond: torch.Tensor, guide: torch.Tensor, sharpness: float, progress: float) -> torch.Tensor:
    """The conditional prediction with `alpha` of it replaced by its anisotropic blur."""
    alpha = sharpness_alpha(sharpness, progress)
    if alpha == 0:
        return eps_cond
    degraded = adaptive_anisotropic_filter(eps_cond, guide)
    return degraded * alpha + eps_cond * (1.0 - alpha)


def mimicked_cfg(
    eps_uncond: torch.Tensor, eps_cond: torch.Tensor, scale: float, adaptive_cfg: float, progress: float
) -> torch.Tensor:
    """Plain CFG; above `adaptive_cfg` it fades in from CFG `adaptive_cfg` (high noise) to `scale`."""
    real = eps_uncond + scale * (eps_cond - eps_uncond)
    if scale <= adaptive_cfg:
        return real
    mimicked = eps_uncond + adaptive_cfg * (eps_cond - eps_uncond)
    return real * progress + mimicked * (1.0 - progress)


def fooocus_cfg(
    eps_uncond: torch.Tensor,
    eps_cond: torch.Tensor,
    guide: torch.Tensor,
    settings: CfgSettings,
    progress: float,
) -> torch.Tensor:
    """Fooocus's final prediction from both halves; `guide` is any positive multiple of the x0 estimate."""
    if settings.is_plain_conditional:
        return eps_cond
    cond = sharpened(eps_cond, guide, settings.sharpness, progress)
    return mimicked_cfg(eps_uncond, cond, settings.guidance_scale, settings.adaptive_cfg, progress)
