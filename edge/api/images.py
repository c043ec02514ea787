"""The image endpoints of Fooocus-API: upscale/vary, inpaint/outpaint, image prompt, enhance.

v1 takes multipart forms (`edge.schemas.forms`), v2 JSON (`edge.schemas.requests`); both build one
`ImageInputs` and go through the one `submit()`. The inpaint routes also answer under the old
`image-inpait-outpaint` spelling that clients of Fooocus-API ≤ 0.3.29 still send.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from sanic import Blueprint, Request
from sanic.response import HTTPResponse
from sanic_ext import openapi

from contracts import GenerationParams, ImageInputs, JobType, OutpaintDirection, UovMethod
from edge import idempotency
from edge.api.generation import submit
from edge.errors import InvalidRequest
from edge.inputs import ImageSet, ImageSource, InputImageError, Loc, prompt_slots
from edge.parsing import json_body
from edge.schemas import forms
from edge.schemas.requests import (
    CommonRequest,
    EnhanceCtrlNet,
    ImageEnhanceRequest,
    ImagePromptRequest,
    InpaintOutpaintRequest,
    TextToImageWithIPRequest,
    UpscaleVaryRequest,
)
from edge.schemas.responses import AsyncJobResponse, GeneratedImageResult

v1 = Blueprint("images_v1", url_prefix="/generation", version=1)
v2 = Blueprint("images_v2", url_prefix="/generation", version=2)
ENHANCE_TABS = 3
INPAINT_PATHS = ("/image-inpaint-outpaint", "/image-inpait-outpaint")


def _params(
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


def _inputs(**fields: Any) -> ImageInputs:
    try:
        return ImageInputs(**fields)
    except ValidationError as error:
        raise InvalidRequest.from_validation(error, "body") from None


def _check_upscale(method: UovMethod, value: float | None) -> None:
    # Fooocus-API lets Custom without a factor through, and the job dies in the worker.
    if method is UovMethod.UPSCALE_CUSTOM and value is None:
        raise InputImageError(
            ("body", "upscale_value"), "required with `Upscale (Custom)`", "missing"
        ).to_request_error()


def _inpaint_inputs(
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


def _enhance_inputs(
    images: ImageSet, image: ImageSource | None, body: Any, tabs: list[EnhanceCtrlNet]
) -> ImageInputs:
    # Fooocus-API answered 500 (UnboundLocalError) without an image; it is a 422 here.
    key = images.add("enhance_input", image, ("body", "enhance_input_image"), required=True)
    return _inputs(
        enhance_input_key=key,
        enhance_uov_method=body.enhance_uov_method,
        enhance_uov_processing_order=body.enhance_uov_processing_order,
        enhance_uov_prompt_type=body.enhance_uov_prompt_type,
        enhance_tabs=[tab.tab() for tab in tabs[:ENHANCE_TABS] if tab.enhance_enabled],
    )


def _v1_slots(request: Request, form: Any) -> list[tuple[Any, Any, Any, Any, Loc]]:
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


def _inline(schema: Any, defs: dict[str, Any]) -> Any:
    """A pydantic JSON schema with its `$ref`s resolved in place, as sanic-ext embeds schemas whole."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            return _inline(defs[schema["$ref"].rsplit("/", 1)[1]], defs)
        return {k: _inline(v, defs) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inline(item, defs) for item in schema]
    return schema


def _schema(kind: Any) -> dict[str, Any]:
    raw = TypeAdapter(kind).json_schema()
    return _inline(raw, raw.get("$defs", {}))  # type: ignore[no-any-return]


ANSWER_SCHEMA = {"oneOf": [_schema(list[GeneratedImageResult]), _schema(AsyncJobResponse)]}
ERROR_SCHEMA = {"type": "object", "properties": {"detail": {}}}


def _docs(body: type[BaseModel], form: bool, summary: str) -> Callable[[Any], Any]:
    """sanic-ext OpenAPI: the request body (JSON or multipart) and the answers."""
    content_type = "multipart/form-data" if form else "application/json"

    def decorate(handler: Any) -> Any:
        handler = openapi.body({content_type: _schema(body)}, required=True)(handler)
        handler = openapi.response(
            200,
            {"application/json": ANSWER_SCHEMA, "image/png": {"type": "string", "format": "binary"}},
            "Result list (sync), job object (async_process) or PNG bytes (Accept: image/png)",
        )(handler)
        handler = openapi.response(422, {"application/json": ERROR_SCHEMA}, "Invalid field, named in loc")(
            handler
        )
        handler = openapi.response(
            504, {"application/json": _schema(AsyncJobResponse)}, "Sync wait timed out"
        )(handler)
        return openapi.summary(summary)(idempotency.documented(handler))

    return decorate


# ---- v2: JSON ------------------------------------------------------------------------------------------


@v2.post("/image-upscale-vary")
@_docs(UpscaleVaryRequest, False, "Upscale or vary an image (JSON)")
async def upscale_vary_v2(request: Request) -> HTTPResponse:
    """POST /v2/generation/image-upscale-vary"""
    body = json_body(request, UpscaleVaryRequest)
    _check_upscale(body.uov_method, body.upscale_value)
    images = ImageSet()
    image = images.add("input_image", body.input_image, ("body", "input_image"), required=True)
    prompts = images.add_prompts(prompt_slots(body.image_prompts))
    inputs = _inputs(
        input_image_key=image,
        uov_method=body.uov_method,
        upscale_value=body.upscale_value,
        image_prompts=prompts,
    )
    params = _params(body, mix_uov=bool(prompts))
    return await submit(request, JobType.UPSCALE_VARY, body, inputs, images, params)


@_docs(InpaintOutpaintRequest, False, "Inpaint or outpaint an image (JSON)")
async def inpaint_outpaint_v2(request: Request) -> HTTPResponse:
    """POST /v2/generation/image-inpaint-outpaint (and the old `image-inpait-outpaint`)"""
    return await _inpaint_v2(request, InpaintOutpaintRequest, JobType.INPAINT_OUTPAINT)


@v2.post("/image-prompt")
@_docs(ImagePromptRequest, False, "Generate with image prompts, optionally inpainting (JSON)")
async def image_prompt_v2(request: Request) -> HTTPResponse:
    """POST /v2/generation/image-prompt"""
    return await _inpaint_v2(request, ImagePromptRequest, JobType.IMAGE_PROMPT)


async def _inpaint_v2(
    request: Request, model: type[InpaintOutpaintRequest], job_type: JobType
) -> HTTPResponse:
    """The v2 inpaint and image-prompt bodies differ only in which fields are required."""
    body = json_body(request, model)
    images = ImageSet()
    fields = _inpaint_inputs(images, body.input_image, body.input_mask, body, image_required=False)
    prompts = images.add_prompts(prompt_slots(body.image_prompts))
    inputs = _inputs(**fields, image_prompts=prompts)
    params = _params(body, mix_inpaint=bool(prompts and fields))
    return await submit(request, job_type, body, inputs, images, params)


@v2.post("/text-to-image-with-ip")
@_docs(TextToImageWithIPRequest, False, "Text to image with image prompts (JSON)")
async def text_to_image_with_ip(request: Request) -> HTTPResponse:
    """POST /v2/generation/text-to-image-with-ip"""
    body = json_body(request, TextToImageWithIPRequest)
    images = ImageSet()
    inputs = _inputs(image_prompts=images.add_prompts(prompt_slots(body.image_prompts)))
    return await submit(request, JobType.TEXT_TO_IMAGE, body, inputs, images)


@v2.post("/image-enhance")
@_docs(ImageEnhanceRequest, False, "Enhance regions of an image (JSON)")
async def image_enhance_v2(request: Request) -> HTTPResponse:
    """POST /v2/generation/image-enhance"""
    body = json_body(request, ImageEnhanceRequest)
    images = ImageSet()
    inputs = _enhance_inputs(images, body.enhance_input_image, body, body.enhance_ctrlnets)
    return await submit(request, JobType.ENHANCE, body, inputs, images, _params(body, one_image=True))


# ---- v1: multipart -------------------------------------------------------------------------------------


@v1.post("/image-upscale-vary")
@_docs(forms.UpscaleVaryForm, True, "Upscale or vary an image (multipart; file `input_image`)")
async def upscale_vary_v1(request: Request) -> HTTPResponse:
    """POST /v1/generation/image-upscale-vary"""
    form = forms.parse_form(request, forms.UpscaleVaryForm)
    _check_upscale(form.uov_method, form.upscale_value)
    images = ImageSet()
    image = images.add("input_image", forms.form_file(request, "input_image"), ("body", "input_image"), True)
    inputs = _inputs(input_image_key=image, uov_method=form.uov_method, upscale_value=form.upscale_value)
    return await submit(request, JobType.UPSCALE_VARY, form, inputs, images)


@_docs(
    forms.InpaintOutpaintForm, True, "Inpaint or outpaint an image (multipart; `input_image`, `input_mask`)"
)
async def inpaint_outpaint_v1(request: Request) -> HTTPResponse:
    """POST /v1/generation/image-inpaint-outpaint (and the old `image-inpait-outpaint`)"""
    form = forms.parse_form(request, forms.InpaintOutpaintForm)
    images = ImageSet()
    image, mask = forms.form_file(request, "input_image"), forms.form_file(request, "input_mask")
    inputs = _inputs(**_inpaint_inputs(images, image, mask, form, image_required=True))
    return await submit(request, JobType.INPAINT_OUTPAINT, form, inputs, images)


@v1.post("/image-prompt")
@_docs(
    forms.ImagePromptForm, True, "Generate with image prompts `cn_img1..4`, optionally inpainting (multipart)"
)
async def image_prompt_v1(request: Request) -> HTTPResponse:
    """POST /v1/generation/image-prompt"""
    form = forms.parse_form(request, forms.ImagePromptForm)
    images = ImageSet()
    image, mask = forms.form_file(request, "input_image"), forms.form_file(request, "input_mask")
    fields = _inpaint_inputs(images, image, mask, form, image_required=False)
    prompts = images.add_prompts(_v1_slots(request, form))
    inputs = _inputs(**fields, image_prompts=prompts)
    # Fooocus-API's v1 route mixes whenever an input image is given.
    return await submit(
        request, JobType.IMAGE_PROMPT, form, inputs, images, _params(form, mix_inpaint=bool(fields))
    )


@v1.post("/image-enhance")
@_docs(forms.ImageEnhanceForm, True, "Enhance regions of an image (multipart; `enhance_*_1..3`)")
async def image_enhance_v1(request: Request) -> HTTPResponse:
    """POST /v1/generation/image-enhance"""
    form = forms.parse_form(request, forms.ImageEnhanceForm)
    images = ImageSet()
    image = forms.form_file(request, "enhance_input_image")
    inputs = _enhance_inputs(images, image, form, forms.enhance_tabs(form))
    return await submit(request, JobType.ENHANCE, form, inputs, images, _params(form, one_image=True))


for _path in INPAINT_PATHS:
    _suffix = _path.strip("/").replace("-", "_")
    v1.add_route(inpaint_outpaint_v1, _path, methods=["POST"], name=f"v1_{_suffix}")
    v2.add_route(inpaint_outpaint_v2, _path, methods=["POST"], name=f"v2_{_suffix}")
