"""What the image endpoints build from a request, v1 form or v2 JSON alike: the job's parameters with
Fooocus-API's mixing flags, and the `ImageInputs` of upscale/vary, inpaint/outpaint, enhance and image
prompts (their images registered in the request's `ImageSet`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from sanic import Request

from contracts import GenerationParams, ImageInputs, OutpaintDirection, UovMethod
from edge.errors import InvalidRequest
from edge.inputs import ImageSet, ImageSource, InputImageError, Loc
from edge.schemas import forms
from edge.schemas.requests import CommonRequest, EnhanceCtrlNet

ENHANCE_TABS = 3


def job_params(
    body: CommonRequest, *, mix_uov: bool = False, mix_inpaint: bool = False, one_image: bool = False
) -> GenerationParams:
    """The job's parameters; the mixing flags are set as Fooocus-API sets them when inputs combine."""
    params = body.generation_params()
    advanced: dict[str, Any] = {}
    if mix_uov:
        advanced["mixing_image_prompt_and_vary_upscale"] = True
    if mix_inpaint:
        advanced["mixing_image_prompt_and_inpaint"] = True
    update: dict[str, Any] = {"advanced_params": params.advanced_params.model_copy(update=advanced)}
    if one_image:
        update["image_number"] = 1
    return params.model_copy(update=update)


def image_inputs(**fields: Any) -> ImageInputs:
    try:
        return ImageInputs(**fields)
    except ValidationError as error:
        raise InvalidRequest.from_validation(error, "body") from None


def check_upscale(method: UovMethod, value: float | None) -> None:
    # Fooocus-API lets Custom without a factor through, and the job dies in the worker.
    if method is UovMethod.UPSCALE_CUSTOM and value is None:
        raise InputImageError(
            ("body", "upscale_value"), "required with `Upscale (Custom)`", "missing"
        ).to_request_error()


def inpaint_inputs(
    images: ImageSet,
    image: ImageSource | None,
    mask: ImageSource | None,
    body: Any,
    *,
    image_required: bool,
) -> dict[str, Any]:
    """Inpaint/outpaint fields. With no image, no mask and no direction there is nothing to paint:
    plain text-to-image, as in Fooocus-API; a mask or direction without an image is a 422."""
    image_key = images.add("input_image", image, ("body", "input_image"), required=image_required)
    directions: Sequence[OutpaintDirection] = body.outpaint_selections
    if image_key is None:
        if directions or images.add("input_mask", mask, ("body", "input_mask")):
            raise InputImageError(
                ("body", "input_image"), "required for a mask or an outpaint direction", "missing"
            ).to_request_error()
        return {}

    def distance(value: int | None) -> int:
        return -1 if value is None else value

    return {
        "input_image_key": image_key,
        "input_mask_key": images.add("input_mask", mask, ("body", "input_mask")),
        "inpaint_additional_prompt": body.inpaint_additional_prompt or "",
        "outpaint_selections": list(directions),
        "outpaint_distance_left": distance(body.outpaint_distance_left),
        "outpaint_distance_right": distance(body.outpaint_distance_right),
        "outpaint_distance_top": distance(body.outpaint_distance_top),
        "outpaint_distance_bottom": distance(body.outpaint_distance_bottom),
    }


def enhance_inputs(
    images: ImageSet, image: ImageSource | None, body: Any, tabs: list[EnhanceCtrlNet]
) -> ImageInputs:
    # Fooocus-API answered 500 (UnboundLocalError) without an image; it is a 422 here.
    key = images.add("enhance_input", image, ("body", "enhance_input_image"), required=True)
    return image_inputs(
        enhance_input_key=key,
        enhance_uov_method=body.enhance_uov_method,
        enhance_uov_processing_order=body.enhance_uov_processing_order,
        enhance_uov_prompt_type=body.enhance_uov_prompt_type,
        enhance_tabs=[tab.tab() for tab in tabs[:ENHANCE_TABS] if tab.enhance_enabled],
    )


def form_prompt_slots(request: Request, form: Any) -> list[tuple[Any, Any, Any, Any, Loc]]:
    return [
        (
            forms.form_file(request, f"cn_img{i}"),
            getattr(form, f"cn_type{i}"),
            getattr(form, f"cn_stop{i}"),
            getattr(form, f"cn_weight{i}"),
            ("body", f"cn_img{i}"),
        )
        for i in range(1, 5)
    ]
