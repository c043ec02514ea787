"""Upscale or vary (fooocus-engine.md §5): Fooocus's denoise per method and its diffusers translation."""

from __future__ import annotations

from PIL import Image

from worker.engine.images import fit_to_latents, round_to

# Fooocus's denoise per method (fooocus-engine.md §5).
VARY_DENOISE = {"Vary (Subtle)": 0.5, "Vary (Strong)": 0.85}
UPSCALE_DENOISE = 0.382
UPSCALE_FACTORS = {"Upscale (1.5x)": 1.5, "Upscale (2x)": 2.0, "Upscale (Fast 2x)": 2.0}
DIRECT_SR_CEIL = 2800  # above this, Fooocus returns the resized image without diffusion


def denoise_schedule(steps: int, denoise: float) -> tuple[int, float] | None:
    """Fooocus's ComfyUI-style denoise in diffusers terms: run `steps` of `int(steps / denoise)`.

    Returns `(num_inference_steps, strength)`, or None when nothing is to be denoised.
    """
    if denoise <= 0:
        return None
    total = max(steps, int(steps / denoise))
    # diffusers runs int(total * strength) steps; the half step keeps float error from losing one.
    return total, min(1.0, (steps + 0.5) / total)


def upscale_factor(method: str, value: float | None) -> float:
    if method == "Upscale (Custom)":
        return value if value is not None and 0 < value < 5 else 2.0
    return UPSCALE_FACTORS[method]


def resized(image: Image.Image, factor: float) -> Image.Image:
    # Lanczos only: no super-resolution model runs yet (`models/upscale_models` is not read).
    width, height = image.size
    return image.convert("RGB").resize(
        (round_to(width * factor), round_to(height * factor)), Image.Resampling.LANCZOS
    )


def uov_source(image: Image.Image, method: str, upscale_value: float | None) -> Image.Image:
    """The image img2img starts from: the input at a latent-friendly size, or its upscale."""
    if method.startswith("Vary"):
        return fit_to_latents(image.convert("RGB"))
    return resized(image, upscale_factor(method, upscale_value))
