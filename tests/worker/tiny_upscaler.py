"""Tiny random-weight ESRGAN RRDBNets in the key namings the upscaler loads, and a reference forward.

The weights are drawn once per layout (`tiny_rrdb_weights`) and then written under any naming, so
every naming of one layout must give the same image. `reference_forward` is ESRGAN's generator written
out with plain `F.conv2d`, independently of `worker.engine.upscaler`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

Conv = tuple[torch.Tensor, torch.Tensor]


@dataclass
class RRDBWeights:
    first: Conv
    blocks: list[list[list[Conv]]]  # block → 3 dense blocks → 5 convs
    trunk: Conv
    ups: list[Conv]
    hr: Conv
    last: Conv
    unshuffle: int = 1


def tiny_rrdb_weights(
    ups: int = 2, blocks: int = 2, features: int = 8, growth: int = 4, unshuffle: int = 1, seed: int = 0
) -> RRDBWeights:
    generator = torch.Generator().manual_seed(seed)

    def conv(cin: int, cout: int) -> Conv:
        scale = (cin * 9) ** -0.5
        weight = torch.randn(cout, cin, 3, 3, generator=generator) * scale
        return weight, torch.randn(cout, generator=generator) * 0.05

    def dense() -> list[Conv]:
        return [conv(features + i * growth, growth if i < 4 else features) for i in range(5)]

    return RRDBWeights(
        first=conv(3 * unshuffle**2, features),
        blocks=[[dense() for _ in range(3)] for _ in range(blocks)],
        trunk=conv(features, features),
        ups=[conv(features, features) for _ in range(ups)],
        hr=conv(features, features),
        last=conv(features, 3),
        unshuffle=unshuffle,
    )


def state_dict(weights: RRDBWeights, naming: str) -> dict[str, torch.Tensor]:
    """`naming`: "fooocus" (old ESRGAN keys, `residual_block_N`), "esrgan" (old keys) or "basicsr"."""
    state: dict[str, torch.Tensor] = {}

    def put(name: str, conv: Conv) -> None:
        state[f"{name}.weight"], state[f"{name}.bias"] = conv[0].clone(), conv[1].clone()

    old = naming in ("fooocus", "esrgan")
    rdb = "residual_block_" if naming == "fooocus" else "RDB"
    put("model.0" if old else "conv_first", weights.first)
    for b, block in enumerate(weights.blocks):
        for d, dense in enumerate(block):
            for c, conv in enumerate(dense):
                put(
                    f"model.1.sub.{b}.{rdb}{d + 1}.conv{c + 1}.0"
                    if old
                    else f"body.{b}.rdb{d + 1}.conv{c + 1}",
                    conv,
                )
    put(f"model.1.sub.{len(weights.blocks)}" if old else "conv_body", weights.trunk)
    for u, conv in enumerate(weights.ups):
        put(f"model.{3 * (u + 1)}" if old else f"conv_up{u + 1}", conv)
    n = len(weights.ups)
    put(f"model.{3 * n + 2}" if old else "conv_hr", weights.hr)
    put(f"model.{3 * n + 4}" if old else "conv_last", weights.last)
    return state


def write_tiny_upscaler(path: Path, weights: RRDBWeights, naming: str) -> Path:
    state = state_dict(weights, naming)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        save_file(state, path)
    else:
        torch.save({"params_ema": state} if naming == "basicsr" else state, path)
    return path


def reference_forward(weights: RRDBWeights, x: torch.Tensor) -> torch.Tensor:
    """ESRGAN: first conv; RRDBs (3 dense blocks, residuals ×0.2) and a trunk conv with a skip around
    them; per ×2: nearest upsample, conv, LeakyReLU(0.2); HR conv, LeakyReLU; last conv."""

    def conv(c: Conv, t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, c[0], c[1], padding=1)

    def act(t: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(t, 0.2)

    height, width = x.shape[-2:]
    if weights.unshuffle > 1:
        x = F.pixel_unshuffle(x, weights.unshuffle)
    features = conv(weights.first, x)
    t = features
    for block in weights.blocks:
        block_in = t
        for dense in block:
            seen = [t]
            for c in dense[:4]:
                seen.append(act(conv(c, torch.cat(seen, 1))))
            t = t + 0.2 * conv(dense[4], torch.cat(seen, 1))
        t = block_in + 0.2 * t
    out = features + conv(weights.trunk, t)
    for c in weights.ups:
        out = act(conv(c, F.interpolate(out, scale_factor=2.0, mode="nearest")))
    out = conv(weights.last, act(conv(weights.hr, out)))
    scale = 2 ** len(weights.ups) // weights.unshuffle
    return out[..., : height * scale, : width * scale]
