"""ControlNet hint images for PyraCanny and CPDS, in numpy/torch (no OpenCV on the workers).

PyraCanny follows Fooocus's `canny_pyramid`: Canny at nine scales (0.2 … 1.0) per RGB channel,
accumulated coarse to fine, summed and stretched between the 1st and 99th percentile. CPDS follows
`cpds`: a light blur, a contrast-preserving decolorization (the discrete weight search of Lu et al.,
which OpenCV's `decolor` refines) plus the colour distance to its colour-boosted image, stretched
between the 4th and 96th percentile. Outputs are RGB images of the generation size.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps


def fit_control_image(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Fooocus `resize_mode=1`: scale to cover `size`, then centre-crop."""
    return ImageOps.fit(image.convert("RGB"), size, Image.Resampling.LANCZOS)


def _sobel(gray: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    kernel = torch.stack([kx, kx.T])[:, None]
    padded = F.pad(gray[None, None], (1, 1, 1, 1), mode="replicate")
    grad = F.conv2d(padded, kernel)[0]
    return grad[0], grad[1]


def canny(channel: np.ndarray, low: float, high: float) -> np.ndarray:
    """Canny edges (bool) of one 8-bit channel: 3×3 Sobel, L1 magnitude, NMS, hysteresis (as cv2)."""
    gray = torch.from_numpy(channel.astype(np.float32))
    gx, gy = _sobel(gray)
    magnitude = gx.abs() + gy.abs()
    angle = torch.rad2deg(torch.atan2(gy, gx)) % 180
    padded = F.pad(magnitude[None, None], (1, 1, 1, 1))[0, 0]
    h, w = magnitude.shape

    def shifted(dy: int, dx: int) -> torch.Tensor:
        return padded[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]

    # Compare each pixel with its two neighbours across the gradient direction (4 sectors).
    sectors = [
        ((angle < 22.5) | (angle >= 157.5), (0, 1), (0, -1)),
        ((angle >= 22.5) & (angle < 67.5), (1, 1), (-1, -1)),
        ((angle >= 67.5) & (angle < 112.5), (1, 0), (-1, 0)),
        ((angle >= 112.5) & (angle < 157.5), (1, -1), (-1, 1)),
    ]
    keep = torch.zeros_like(magnitude, dtype=torch.bool)
    for sector, a, b in sectors:
        keep |= sector & (magnitude >= shifted(*a)) & (magnitude > shifted(*b))
    thin = torch.where(keep, magnitude, torch.zeros_like(magnitude))
    strong = thin > high
    weak = thin > low
    # Hysteresis: grow strong edges through 8-connected weak ones until nothing changes.
    edges = strong.float()[None, None]
    weak_f = weak.float()[None, None]
    while True:
        grown = F.max_pool2d(edges, 3, stride=1, padding=1) * weak_f
        grown = torch.maximum(grown, edges)
        if torch.equal(grown, edges):
            break
        edges = grown
    return edges[0, 0].numpy() > 0.5


def _stretch(values: np.ndarray, low_pct: float, high_pct: float) -> np.ndarray:
    low, high = np.percentile(values, low_pct), np.percentile(values, high_pct)
    scaled = (values - low) / max(float(high - low), 1e-5)
    return (np.clip(scaled, 0, 1) * 255).astype(np.uint8)


def _resize(array: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    tensor = torch.from_numpy(array.astype(np.float32)).permute(2, 0, 1)[None]
    width, height = size
    if mode == "area":
        out = F.interpolate(tensor, size=(height, width), mode="area")
    else:
        out = F.interpolate(tensor, size=(height, width), mode="bilinear", align_corners=False)
    return out[0].permute(1, 2, 0).numpy()


def pyramid_canny(image: Image.Image, low: int, high: int) -> Image.Image:
    """Fooocus's PyraCanny map (grey, as RGB) of `image` at its own size."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    height, width = rgb.shape[:2]
    acc: np.ndarray | None = None
    for k in np.arange(0.2, 1.01, 0.1):
        size = (max(1, int(width * k)), max(1, int(height * k)))
        scaled = np.clip(_resize(rgb, size, "area"), 0, 255).round()
        edges = np.stack([canny(scaled[..., c], low, high) for c in range(3)], axis=-1).astype(np.float32)
        acc = edges if acc is None else _resize(acc, size, "linear") * 0.75 + edges * 0.25
    assert acc is not None
    grey = _stretch(acc.sum(axis=-1), 1, 99)
    return Image.fromarray(grey, "L").convert("RGB")


def _gaussian_blur(rgb: np.ndarray, sigma: float) -> np.ndarray:
    radius = max(1, round(sigma * 3))
    xs = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(xs**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    tensor = torch.from_numpy(rgb).permute(2, 0, 1)[:, None]  # channels as a batch
    tensor = F.conv2d(F.pad(tensor, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
    tensor = F.conv2d(F.pad(tensor, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1))
    return tensor[:, 0].permute(1, 2, 0).numpy()


def _decolor_weights(rgb: np.ndarray) -> np.ndarray:
    """The (wr, wg, wb) on a 0.1 grid (66 candidates) that best preserves neighbour colour contrast."""
    small = rgb[:: max(1, rgb.shape[0] // 64), :: max(1, rgb.shape[1] // 64)] / 255.0
    pairs = [
        (small[:, 1:] - small[:, :-1]).reshape(-1, 3),
        (small[1:] - small[:-1]).reshape(-1, 3),
    ]
    diffs = np.concatenate(pairs)
    contrast = np.linalg.norm(diffs, axis=1)  # the colour contrast each grey difference should keep
    sigma = 0.05
    best, best_energy = np.array([0.299, 0.587, 0.114]), -np.inf
    for r, g in itertools.product(range(11), repeat=2):
        if r + g > 10:
            continue
        weights = np.array([r, g, 10 - r - g]) / 10.0
        grey = diffs @ weights
        # Lu et al.: log-likelihood that each grey difference keeps its sign-agnostic contrast.
        energy = np.log(
            np.exp(-((grey - contrast) ** 2) / (2 * sigma**2))
            + np.exp(-((grey + contrast) ** 2) / (2 * sigma**2))
            + 1e-12
        ).sum()
        if energy > best_energy:
            best, best_energy = weights, energy
    return best


def cpds(image: Image.Image) -> Image.Image:
    """Fooocus's CPDS structure map (grey, as RGB) of `image` at its own size."""
    raw = _gaussian_blur(np.asarray(image.convert("RGB"), dtype=np.float32), 0.8)
    density = raw @ _decolor_weights(raw)
    # The colour-boosted image: the same colours with their luminance replaced by the density.
    luminance = raw @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    boost = np.clip(raw * (density / np.maximum(luminance, 1e-3))[..., None], 0, 255)
    result = density + np.linalg.norm(raw - boost, axis=-1)
    return Image.fromarray(_stretch(result, 4, 96), "L").convert("RGB")
