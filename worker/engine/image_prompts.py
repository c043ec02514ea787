"""Image-prompt slots (fooocus-engine.md §7) turned into diffusers arguments: ControlNet hints, scales
and ends for PyraCanny/CPDS, IP-Adapter images, weights and stops for ImagePrompt/FaceSwap."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from diffusers import ControlNetModel
from PIL import Image

from worker.engine import ip_adapter
from worker.engine.folders import ModelFolders
from worker.engine.images import JobImages
from worker.engine.preprocessors import cpds, fit_control_image, pyramid_canny

if TYPE_CHECKING:
    from contracts.params import GenerationParams

CONTROLNET_TYPES = ("PyraCanny", "CPDS")
IP_ADAPTER_TYPES = ("ImagePrompt", "FaceSwap")


@dataclass
class Controls:
    """The image-prompt slots of one job, ready for a diffusers call."""

    controlnets: list[ControlNetModel] = field(default_factory=list)
    images: list[Image.Image] = field(default_factory=list)
    scales: list[float] = field(default_factory=list)
    ends: list[float] = field(default_factory=list)
    ip_slots: list[tuple[str, float]] = field(default_factory=list)
    ip_images: list[Image.Image] = field(default_factory=list)
    ip_stops: list[float] = field(default_factory=list)

    @property
    def controlnet(self) -> ControlNetModel | list[ControlNetModel] | None:
        if not self.controlnets:
            return None
        return self.controlnets[0] if len(self.controlnets) == 1 else self.controlnets

    def call_args(self, control_key: str) -> dict[str, Any]:
        args: dict[str, Any] = {}
        if self.controlnets:
            single = len(self.controlnets) == 1
            args[control_key] = self.images[0] if single else self.images
            args["controlnet_conditioning_scale"] = self.scales[0] if single else self.scales
            args["control_guidance_end"] = self.ends[0] if single else self.ends
        if self.ip_slots:
            args["ip_adapter_image"] = self.ip_images
        return args


def build_controls(
    params: GenerationParams,
    inputs: JobImages,
    size: tuple[int, int],
    controlnet_for: Callable[[str], ControlNetModel],
    folders: ModelFolders,
) -> Controls:
    """Preprocess each slot and load its model; a missing model file fails the job, naming it."""
    controls = Controls()
    advanced = params.advanced_params
    for slot in inputs.spec.image_prompts:
        cn_type = slot.cn_type.value
        if cn_type in CONTROLNET_TYPES and slot.cn_stop <= 0:
            continue  # stops before the first step: it would steer nothing (diffusers refuses end 0)
        image = inputs.image(slot.image_key, f"a {cn_type} image prompt")
        if cn_type in CONTROLNET_TYPES:
            controls.controlnets.append(controlnet_for(cn_type))
            hint = fit_control_image(image, size)
            if not advanced.skipping_cn_preprocessor:
                if cn_type == "PyraCanny":
                    hint = pyramid_canny(hint, advanced.canny_low_threshold, advanced.canny_high_threshold)
                else:
                    hint = cpds(hint)
            controls.images.append(hint)
            controls.scales.append(slot.cn_weight)
            controls.ends.append(slot.cn_stop)
        else:
            controls.ip_slots.append((cn_type, slot.cn_weight))
            controls.ip_images.append(image.convert("RGB").resize((224, 224), Image.Resampling.LANCZOS))
            controls.ip_stops.append(slot.cn_stop)
    if controls.ip_slots:
        folders.require(
            "an image prompt (IP-Adapter)",
            *ip_adapter.required_files(folders, [t for t, _ in controls.ip_slots]),
        )
    return controls


def ip_cutoff(report: Callable[..., Any], controls: Controls) -> Callable[..., Any]:
    """Each IP-Adapter stops at its `cn_stop` (a step fraction here; Fooocus uses noise level)."""
    weights = [weight for _, weight in controls.ip_slots]

    def callback(pipeline: Any, step_index: int, timestep: Any, tensors: dict[str, Any]) -> Any:
        done = (step_index + 1) / max(pipeline.num_timesteps, 1)
        pipeline.set_ip_adapter_scale(
            [w if done < stop else 0.0 for w, stop in zip(weights, controls.ip_stops, strict=True)]
        )
        return report(pipeline, step_index, timestep, tensors)

    return callback
