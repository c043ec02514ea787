"""Super-resolution before Fooocus's upscales (fooocus-engine.md §5): an ESRGAN RRDBNet from
`models/upscale_models/`, run in overlapping pixel tiles, then Lanczos to the size asked for.

Usage:

    model = load_upscaler(path, device, dtype)      # infers scale, blocks and channels from the file
    bigger = super_resolve(model, image)             # the model's own scale (4x for Fooocus's)

Loads Fooocus's `fooocus_upscaler_s409985e5.bin` (old ESRGAN keys with `residual_block_N` for
`RDBN`), original ESRGAN files (`model.0...`, `model.1.sub.N.RDBM.convK.0...`) and BasicSR /
Real-ESRGAN files (`conv_first`, `body.N.rdbM.convK`, `conv_up1`, ..., optionally under
`params_ema`, with pixel-unshuffle inputs for x2/x1), as `.bin`/`.pth`/`.pt` or `.safetensors`.
Tiles are 512 px with 32 px overlap, blended with a linear feather, and halve on CUDA out-of-memory,
as Fooocus's `ImageUpscaleWithModel`.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file
from torch import nn

TILE = 512
OVERLAP = 32
MIN_TILE = 64
RESIDUAL_SCALE = 0.2  # ESRGAN scales each dense block's and each RRDB's residual by 0.2
SLOPE = 0.2  # LeakyReLU slope
SUFFIXES = (".bin", ".pth", ".pt", ".safetensors")
FOOOCUS_UPSCALER = "fooocus_upscaler_s409985e5.bin"


class UpscalerError(ValueError):
    """A file in `models/upscale_models/` that is not an RRDBNet this module can run."""


def _conv(channels_in: int, channels_out: int) -> nn.Conv2d:
    return nn.Conv2d(channels_in, channels_out, 3, padding=1)


class DenseBlock(nn.Module):
    """Five 3×3 convolutions, each fed every earlier output (the RDB)."""

    def __init__(self, features: int, growth: int) -> None:
        super().__init__()
        outs = [growth] * 4 + [features]
        self.convs = nn.ModuleList(_conv(features + i * growth, out) for i, out in enumerate(outs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seen = [x]
        for conv in self.convs[:-1]:
            seen.append(F.leaky_relu(conv(torch.cat(seen, 1)), SLOPE))
        return x + RESIDUAL_SCALE * self.convs[-1](torch.cat(seen, 1))


class ResidualInResidual(nn.Module):
    """Three dense blocks with a scaled residual around them (the RRDB)."""

    def __init__(self, features: int, growth: int) -> None:
        super().__init__()
        self.dense = nn.ModuleList(DenseBlock(features, growth) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for block in self.dense:
            out = block(out)
        return x + RESIDUAL_SCALE * out


class RRDBNet(nn.Module):
    """ESRGAN's generator: a trunk of RRDBs, then ×2 nearest upsamplings each followed by a conv."""

    def __init__(
        self, in_channels: int, out_channels: int, features: int, growth: int, blocks: int, ups: int
    ) -> None:
        super().__init__()
        # Real-ESRGAN x2/x1 fold 2×2 or 4×4 pixels into channels before the first conv.
        self.unshuffle = int(math.sqrt(in_channels // out_channels)) if in_channels > out_channels else 1
        self.first = _conv(in_channels, features)
        self.blocks = nn.ModuleList(ResidualInResidual(features, growth) for _ in range(blocks))
        self.trunk = _conv(features, features)
        self.ups = nn.ModuleList(_conv(features, features) for _ in range(ups))
        self.hr = _conv(features, features)
        self.last = _conv(features, out_channels)
        self.scale = 2**ups // self.unshuffle

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        if self.unshuffle > 1:
            pad_h, pad_w = (-height) % self.unshuffle, (-width) % self.unshuffle
            x = F.pixel_unshuffle(F.pad(x, (0, pad_w, 0, pad_h), mode="reflect"), self.unshuffle)
        features = self.first(x)
        trunk = features
        for block in self.blocks:
            trunk = block(trunk)
        out = features + self.trunk(trunk)
        for up in self.ups:
            out = F.leaky_relu(up(F.interpolate(out, scale_factor=2, mode="nearest")), SLOPE)
        out = self.last(F.leaky_relu(self.hr(out), SLOPE))
        return out[..., : height * self.scale, : width * self.scale]


# Standard (BasicSR / Real-ESRGAN) names → this module's; old ESRGAN names are handled in `_from_old`.
_NEW_NAMES = (
    (r"conv_first\.(weight|bias)", r"first.\1"),
    (r"(?:body|RRDB_trunk)\.(\d+)\.(?:rdb|RDB)(\d)\.conv(\d)\.(weight|bias)", None),
    (r"(?:conv_body|trunk_conv)\.(weight|bias)", r"trunk.\1"),
    (r"(?:conv_up|upconv)(\d)\.(weight|bias)", None),
    (r"(?:conv_hr|HRconv)\.(weight|bias)", r"hr.\1"),
    (r"conv_last\.(weight|bias)", r"last.\1"),
)


def _block_key(block: str, dense: str, conv: str, kind: str) -> str:
    return f"blocks.{block}.dense.{int(dense) - 1}.convs.{int(conv) - 1}.{kind}"


def _from_new(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        for pattern, target in _NEW_NAMES:
            match = re.fullmatch(pattern, key)
            if match is None:
                continue
            if target is not None:
                out[match.expand(target)] = tensor
            elif len(match.groups()) == 4:
                out[_block_key(*match.groups())] = tensor
            else:
                out[f"ups.{int(match.group(1)) - 1}.{match.group(2)}"] = tensor
            break
        else:
            raise UpscalerError(f"unexpected key `{key}`")
    return out


def _from_old(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`model.0` first conv, `model.1.sub.*` the trunk; then numbered upsampling convs, HR and last."""
    out: dict[str, torch.Tensor] = {}
    tail: dict[int, dict[str, torch.Tensor]] = {}
    for key, tensor in state.items():
        key = key.replace("residual_block_", "RDB")  # Fooocus's own file names its RDBs this way
        if match := re.fullmatch(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)", key):
            out[_block_key(*match.groups())] = tensor
        elif match := re.fullmatch(r"model\.1\.sub\.\d+\.(weight|bias)", key):
            out[f"trunk.{match.group(1)}"] = tensor
        elif match := re.fullmatch(r"model\.(\d+)\.(weight|bias)", key):
            tail.setdefault(int(match.group(1)), {})[match.group(2)] = tensor
        else:
            raise UpscalerError(f"unexpected key `{key}`")
    layers = [tail[index] for index in sorted(tail)]
    if len(layers) < 3:
        raise UpscalerError("it lacks the first, HR or last convolution")
    names = ["first"] + [f"ups.{i}" for i in range(len(layers) - 3)] + ["hr", "last"]
    for name, layer in zip(names, layers, strict=True):
        out.update({f"{name}.{kind}": tensor for kind, tensor in layer.items()})
    return out


def build_upscaler(state: dict[str, torch.Tensor]) -> RRDBNet:
    """An `RRDBNet` holding `state`, whichever naming it uses; its shape is read from the weights."""
    for wrapper in ("params_ema", "params", "state_dict"):
        if isinstance(state.get(wrapper), dict):
            state = state[wrapper]  # type: ignore[assignment]
    try:
        ours = _from_new(state) if "conv_first.weight" in state else _from_old(state)
        first, last = ours["first.weight"], ours["last.weight"]
        blocks = 1 + max(int(key.split(".")[1]) for key in ours if key.startswith("blocks."))
        ups = sum(1 for key in ours if key.startswith("ups.") and key.endswith(".weight"))
        growth = ours["blocks.0.dense.0.convs.0.weight"].shape[0]
        model = RRDBNet(first.shape[1], last.shape[0], first.shape[0], growth, blocks, ups)
        model.load_state_dict(ours, strict=True)
    except UpscalerError:
        raise
    except (KeyError, ValueError, RuntimeError) as failure:  # a missing layer or a mismatched shape
        raise UpscalerError(f"the weights do not fit an ESRGAN RRDBNet: {failure}") from None
    return model.eval()


def find_upscaler(folder: Path) -> Path | None:
    """Fooocus's own upscaler when it is in `folder`, else the first model file there by name."""
    if (folder / FOOOCUS_UPSCALER).is_file():
        return folder / FOOOCUS_UPSCALER
    if not folder.is_dir():
        return None
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in SUFFIXES)
    return files[0] if files else None


def read_state(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        return load_file(path)
    return torch.load(path, map_location="cpu", weights_only=True)  # type: ignore[no-any-return]


def load_upscaler(path: Path, device: torch.device, dtype: torch.dtype) -> RRDBNet:
    """The RRDBNet in `path` on `device`; an `UpscalerError` names the file when it is something else."""
    try:
        model = build_upscaler(read_state(path))
    except UpscalerError as failure:
        raise UpscalerError(f"the upscale model `{path.name}` is not an ESRGAN RRDBNet: {failure}") from None
    return model.to(device=device, dtype=dtype)


def _feather(height: int, width: int, ramp: int) -> torch.Tensor:
    """1 inside, rising linearly over `ramp` pixels from every edge (never 0, so edges still count)."""

    def edge(length: int) -> torch.Tensor:
        position = torch.arange(length, dtype=torch.float32)
        distance = torch.minimum(position, length - 1 - position)
        return ((distance + 1) / max(ramp, 1)).clamp(max=1.0)

    return edge(height)[:, None] * edge(width)[None, :]


def _starts(length: int, tile: int, stride: int) -> list[int]:
    if length <= tile:
        return [0]
    return [*range(0, length - tile, stride), length - tile]


@torch.no_grad()
def run_tiled(model: RRDBNet, pixels: torch.Tensor, tile: int = TILE, overlap: int = OVERLAP) -> torch.Tensor:
    """`model` over `pixels` (1×C×H×W) in tiles of `tile` px overlapping by `overlap`, feather-blended."""
    height, width = pixels.shape[-2:]
    if height <= tile and width <= tile:
        return model(pixels)
    scale = model.scale
    out = torch.zeros((*pixels.shape[:2], height * scale, width * scale), device=pixels.device)
    weight = torch.zeros((height * scale, width * scale), device=pixels.device)
    stride = max(tile - overlap, 1)
    for top in _starts(height, tile, stride):
        for left in _starts(width, tile, stride):
            patch = model(pixels[..., top : top + tile, left : left + tile]).float()
            mask = _feather(*patch.shape[-2:], overlap * scale).to(pixels.device)
            rows = slice(top * scale, top * scale + patch.shape[-2])
            cols = slice(left * scale, left * scale + patch.shape[-1])
            out[..., rows, cols] += patch * mask
            weight[rows, cols] += mask
    return out / weight


def super_resolve(
    model: RRDBNet, image: Image.Image, tile: int = TILE, overlap: int = OVERLAP
) -> Image.Image:
    """`image` enlarged by the model's own scale; the tile halves when CUDA runs out of memory."""
    parameter = next(model.parameters())
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    pixels = torch.from_numpy(array).permute(2, 0, 1)[None].to(parameter.device, parameter.dtype)
    while True:
        try:
            out = run_tiled(model, pixels, tile, overlap)
            break
        except torch.cuda.OutOfMemoryError:
            if tile // 2 < MIN_TILE:
                raise
            tile //= 2
            torch.cuda.empty_cache()
    result = out[0].float().clamp(0, 1).permute(1, 2, 0).mul(255).round().byte().cpu().numpy()
    return Image.fromarray(result)
