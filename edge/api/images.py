"""The image endpoints of Fooocus-API: upscale/vary, inpaint/outpaint, image prompt, enhance.

v1 takes multipart forms (`edge.schemas.forms`), v2 JSON (`edge.schemas.requests`); both build one
`ImageInputs` and go through the one `submit()`. The inpaint routes also answer under the old
`image-inpait-outpaint` spelling that clients of Fooocus-API ≤ 0.3.29 still send.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sanic import Blueprint, Request
from sanic.response import HTTPResponse
from sanic_ext import openapi

from contracts import JobType
from edge.api.generation import submit
from edge.api.image_inputs import (
    check_upscale,
    enhance_inputs,
    form_prompt_slots,
    image_inputs,
    inpaint_inputs,
    job_params,
)
from edge.api.openapi_docs import documented
from edge.inputs import ImageSet, prompt_slots
from edge.parsing import json_body
from edge.schemas import forms
from edge.schemas.requests import (
    ImageEnhanceRequest,
    ImagePromptRequest,
    InpaintOutpaintRequest,
    TextToImageWithIPRequest,
    UpscaleVaryRequest,
)

Handler = Callable[[Request], Awaitable[HTTPResponse]]
v1 = Blueprint("images_v1", url_prefix="/generation", version=1)
v2 = Blueprint("images_v2", url_prefix="/generation", version=2)


# ---- v2: JSON ------------------------------------------------------------------------------------------


@v2.post("/image-upscale-vary")
@documented(UpscaleVaryRequest, False, "Upscale or vary an image (JSON)")
async def upscale_vary_v2(request: Request) -> HTTPResponse:
    """POST /v2/generation/image-upscale-vary"""
    body = json_body(request, UpscaleVaryRequest)
    check_upscale(body.uov_method, body.upscale_value)
    images = ImageSet()
    image = images.add("input_image", body.input_image, ("body", "input_image"), required=True)
    prompts = images.add_prompts(prompt_slots(body.image_prompts))
    inputs = image_inputs(
        input_image_key=image,
        uov_method=body.uov_method,
        upscale_value=body.upscale_value,
        image_prompts=prompts,
    )
    params = job_params(body, mix_uov=bool(prompts))
    return await submit(request, JobType.UPSCALE_VARY, body, inputs, images, params)


V2_INPAINT_DOCS = documented(InpaintOutpaintRequest, False, "Inpaint or outpaint an image (JSON)")
V1_INPAINT_DOCS = documented(
    forms.InpaintOutpaintForm, True, "Inpaint or outpaint an image (multipart; `input_image`, `input_mask`)"
)


def old_spelling(handler: Handler, docs: Callable[[Handler], Handler]) -> Handler:
    """`handler` under the `image-inpait-outpaint` spelling of Fooocus-API ≤ 0.3.29: a function of its
    own, so the OpenAPI document has a distinct, deprecated operation for it."""

    async def alias(request: Request) -> HTTPResponse:
        return await handler(request)

    alias.__doc__ = f"{handler.__doc__} under its old spelling"
    return openapi.deprecated()(docs(alias))  # type: ignore[no-any-return]


@V2_INPAINT_DOCS
async def inpaint_outpaint_v2(request: Request) -> HTTPResponse:
    """POST /v2/generation/image-inpaint-outpaint"""
    return await _inpaint_v2(request, InpaintOutpaintRequest, JobType.INPAINT_OUTPAINT)


@v2.post("/image-prompt")
@documented(ImagePromptRequest, False, "Generate with image prompts, optionally inpainting (JSON)")
async def image_prompt_v2(request: Request) -> HTTPResponse:
    """POST /v2/generation/image-prompt"""
    return await _inpaint_v2(request, ImagePromptRequest, JobType.IMAGE_PROMPT)


async def _inpaint_v2(
    request: Request, model: type[InpaintOutpaintRequest], job_type: JobType
) -> HTTPResponse:
    """The v2 inpaint and image-prompt bodies differ only in which fields are required."""
    body = json_body(request, model)
    images = ImageSet()
    fields = inpaint_inputs(images, body.input_image, body.input_mask, body, image_required=False)
    prompts = images.add_prompts(prompt_slots(body.image_prompts))
    inputs = image_inputs(**fields, image_prompts=prompts)
    params = job_params(body, mix_inpaint=bool(prompts and fields))
    return await submit(request, job_type, body, inputs, images, params)


@v2.post("/text-to-image-with-ip")
@documented(TextToImageWithIPRequest, False, "Text to image with image prompts (JSON)")
async def text_to_image_with_ip(request: Request) -> HTTPResponse:
    """POST /v2/generation/text-to-image-with-ip"""
    body = json_body(request, TextToImageWithIPRequest)
    images = ImageSet()
    inputs = image_inputs(image_prompts=images.add_prompts(prompt_slots(body.image_prompts)))
    return await submit(request, JobType.TEXT_TO_IMAGE, body, inputs, images)


@v2.post("/image-enhance")
@documented(ImageEnhanceRequest, False, "Enhance regions of an image (JSON)")
async def image_enhance_v2(request: Request) -> HTTPResponse:
    """POST /v2/generation/image-enhance"""
    body = json_body(request, ImageEnhanceRequest)
    images = ImageSet()
    inputs = enhance_inputs(images, body.enhance_input_image, body, body.enhance_ctrlnets)
    return await submit(request, JobType.ENHANCE, body, inputs, images, job_params(body, one_image=True))


# ---- v1: multipart -------------------------------------------------------------------------------------


@v1.post("/image-upscale-vary")
@documented(forms.UpscaleVaryForm, True, "Upscale or vary an image (multipart; file `input_image`)")
async def upscale_vary_v1(request: Request) -> HTTPResponse:
    """POST /v1/generation/image-upscale-vary"""
    form = forms.parse_form(request, forms.UpscaleVaryForm)
    check_upscale(form.uov_method, form.upscale_value)
    images = ImageSet()
    image = images.add("input_image", forms.form_file(request, "input_image"), ("body", "input_image"), True)
    inputs = image_inputs(input_image_key=image, uov_method=form.uov_method, upscale_value=form.upscale_value)
    return await submit(request, JobType.UPSCALE_VARY, form, inputs, images)


@V1_INPAINT_DOCS
async def inpaint_outpaint_v1(request: Request) -> HTTPResponse:
    """POST /v1/generation/image-inpaint-outpaint"""
    form = forms.parse_form(request, forms.InpaintOutpaintForm)
    images = ImageSet()
    image, mask = forms.form_file(request, "input_image"), forms.form_file(request, "input_mask")
    inputs = image_inputs(**inpaint_inputs(images, image, mask, form, image_required=True))
    return await submit(request, JobType.INPAINT_OUTPAINT, form, inputs, images)


@v1.post("/image-prompt")
@documented(
    forms.ImagePromptForm, True, "Generate with image prompts `cn_img1..4`, optionally inpainting (multipart)"
)
async def image_prompt_v1(request: Request) -> HTTPResponse:
    """POST /v1/generation/image-prompt"""
    form = forms.parse_form(request, forms.ImagePromptForm)
    images = ImageSet()
    image, mask = forms.form_file(request, "input_image"), forms.form_file(request, "input_mask")
    fields = inpaint_inputs(images, image, mask, form, image_required=False)
    prompts = images.add_prompts(form_prompt_slots(request, form))
    inputs = image_inputs(**fields, image_prompts=prompts)
    # Fooocus-API's v1 route mixes whenever an input image is given.
    return await submit(
        request, JobType.IMAGE_PROMPT, form, inputs, images, job_params(form, mix_inpaint=bool(fields))
    )


@v1.post("/image-enhance")
@documented(forms.ImageEnhanceForm, True, "Enhance regions of an image (multipart; `enhance_*_1..3`)")
async def image_enhance_v1(request: Request) -> HTTPResponse:
    """POST /v1/generation/image-enhance"""
    form = forms.parse_form(request, forms.ImageEnhanceForm)
    images = ImageSet()
    image = forms.form_file(request, "enhance_input_image")
    inputs = enhance_inputs(images, image, form, forms.enhance_tabs(form))
    return await submit(request, JobType.ENHANCE, form, inputs, images, job_params(form, one_image=True))


for _version, _handler, _docs in (
    (v1, inpaint_outpaint_v1, V1_INPAINT_DOCS),
    (v2, inpaint_outpaint_v2, V2_INPAINT_DOCS),
):
    _version.add_route(_handler, "/image-inpaint-outpaint", methods=["POST"], name=_handler.__name__)
    _version.add_route(
        old_spelling(_handler, _docs),
        "/image-inpait-outpaint",
        methods=["POST"],
        name=f"{_handler.__name__}_old",
    )
