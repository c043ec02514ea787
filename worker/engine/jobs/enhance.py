"""Enhance (Fooocus's enhance tabs): an optional upscale/vary before or after, and one masked inpaint per
tab whose mask comes from a segmentation model (`worker.engine.masks`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from PIL import Image

from contracts import MaskOptions
from worker.engine.images import JobImages, binary_mask, erode_or_dilate
from worker.engine.jobs.inpaint import inpaint_one
from worker.engine.jobs.tasks import ImageRun, image_runs
from worker.engine.jobs.uov import uov_one
from worker.engine.masks import generate_mask
from worker.engine.runs import GeneratedImage, StepCallback

if TYPE_CHECKING:
    from contracts.inputs import EnhanceTab
    from contracts.params import GenerationParams
    from worker.engine.jobs.engine import JobEngine


def enhance(
    jobs: JobEngine, params: GenerationParams, inputs: JobImages, seeds: list[int], on_step: StepCallback
) -> Iterator[GeneratedImage]:
    """Optional upscale/vary before or after, and one masked inpaint per enhance tab."""
    spec = inputs.spec
    image = inputs.image(spec.enhance_input_key, "an image to enhance (`enhance_input_image`)")
    jobs.check_seeds(params, seeds)
    method = spec.enhance_uov_method.value
    before = spec.enhance_uov_processing_order == "Before First Enhancement"
    return _enhanced(jobs, image, method, before, spec.enhance_tabs, image_runs(params, seeds, on_step))


def _enhanced(
    jobs: JobEngine,
    image: Image.Image,
    method: str,
    before: bool,
    tabs: list[EnhanceTab],
    runs: Iterator[ImageRun],
) -> Iterator[GeneratedImage]:
    for run in runs:
        current = image.convert("RGB")
        if method != "Disabled" and before:
            current = uov_one(jobs, run, current, method)
        for tab in tabs:
            current = enhance_tab(jobs, run, tab, current)
        if method != "Disabled" and not before:
            current = uov_one(jobs, run, current, method)
        yield jobs.generated(run, current)


def enhance_tab(jobs: JobEngine, run: ImageRun, tab: EnhanceTab, image: Image.Image) -> Image.Image:
    """`image` repainted inside the tab's mask with the tab's prompts; unchanged when the mask is empty."""
    mask = binary_mask(generate_mask(jobs.folders, image, tab_mask_options(tab)), image.size)
    mask = erode_or_dilate(mask, tab.enhance_inpaint_erode_or_dilate)
    if tab.enhance_mask_invert:
        mask = ~mask
    if not mask.any():
        return image  # nothing detected: the tab leaves the image as it is
    params = run.params
    tab_params = params.model_copy(
        update={
            "prompt": tab.enhance_prompt or params.prompt,
            "negative_prompt": tab.enhance_negative_prompt or params.negative_prompt,
        }
    )
    tab_run = run.with_params(tab_params)
    strength, field = tab.enhance_inpaint_strength, tab.enhance_inpaint_respective_field
    return inpaint_one(jobs, tab_run, image, mask, strength, tab_params.prompt, field)


def tab_mask_options(tab: EnhanceTab) -> MaskOptions:
    """The tab's segmentation request, as `generate_mask` takes it."""
    return MaskOptions(
        mask_model=tab.enhance_mask_model,
        dino_prompt_text=tab.enhance_mask_dino_prompt,
        cloth_category=tab.enhance_mask_cloth_category,
        sam_model=tab.enhance_mask_sam_model,
        box_threshold=tab.enhance_mask_box_threshold,
        text_threshold=tab.enhance_mask_text_threshold,
        sam_max_detections=tab.enhance_mask_sam_max_detections,
    )
