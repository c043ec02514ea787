"""Fooocus's ADM scaling (fooocus-engine.md §4.3): the SDXL size conditioning, per prompt and per timestep.

SDXL conditions on six numbers (original h, w, crop top, left, target h, w), diffusers' `add_time_ids`.
Fooocus tells the model the positive prompt was 1.5× larger and the negative 0.8× ("emphasized") for
the noisiest `adm_scaler_end` of the timesteps, then the honest size ("consistent"). Sizes are in
pixels, height first; targets are rounded to multiples of 64.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

TRAIN_TIMESTEPS_MAX = 999
REFINER_AESTHETIC_POSITIVE = 6.0
REFINER_AESTHETIC_NEGATIVE = 2.5


@dataclass(frozen=True, slots=True)
class AdmScalers:
    """`advanced_params.adm_scaler_positive/negative/end`; 1/1/0 turns the scaling off."""

    positive: float = 1.5
    negative: float = 0.8
    end: float = 0.3

    def emphasizes(self, timestep: float) -> bool:
        """Whether `timestep` (the UNet's discrete t) is in the emphasized, high-noise part."""
        return timestep > TRAIN_TIMESTEPS_MAX * (1.0 - self.end)


def round64(value: float) -> int:
    """The nearest multiple of 64 (Python rounding: halves go to the even multiple)."""
    return round(value / 64) * 64


def emphasized_ids(height: int, width: int, scale: float) -> list[float]:
    return [int(height * scale), int(width * scale), 0, 0, round64(height), round64(width)]


def consistent_ids(height: int, width: int) -> list[float]:
    return [round64(height), round64(width), 0, 0, round64(height), round64(width)]


def sdxl_time_ids(
    scalers: AdmScalers, height: int, width: int, timestep: float, *, negative: bool
) -> list[float]:
    """The six numbers for one prompt at one timestep."""
    if scalers.emphasizes(timestep):
        return emphasized_ids(height, width, scalers.negative if negative else scalers.positive)
    return consistent_ids(height, width)


def refiner_time_ids(height: int, width: int, *, negative: bool) -> list[float]:
    """An SDXL-refiner's five numbers: size, no crop, aesthetic score 2.5 (negative) or 6 (positive)."""
    score = REFINER_AESTHETIC_NEGATIVE if negative else REFINER_AESTHETIC_POSITIVE
    return [height, width, 0, 0, score]


def batch_time_ids(
    rows: tuple[list[float], list[float]], batch: int, *, cfg: bool, like: torch.Tensor
) -> torch.Tensor:
    """`time_ids` for a UNet batch: [negative; positive] halves under CFG, else positive rows only.

    `rows` is (negative, positive); the result has `like`'s dtype and device.
    """
    negative, positive = rows
    if cfg:
        half = batch // 2
        values = [negative] * half + [positive] * (batch - half)
    else:
        values = [positive] * batch
    return torch.tensor(values, dtype=like.dtype, device=like.device)
