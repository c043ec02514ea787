"""v1 multipart requests, read by Fooocus-API's rules (spec §5), with 422s where it answered 500.

- Booleans are lax (`true/True/1/yes/on`…); Python `requests` sends `"True"`.
- `style_selections`: repeated fields and/or comma-separated values, each stripped; `""` means no styles.
- `outpaint_selections`: the same splitting (stripped too, where Fooocus-API answered 500 on `"Left, Top"`).
- `loras` and `advanced_params`: JSON strings; a bad one is a 422 naming the field (Fooocus-API silently
  reset `advanced_params` to defaults). An empty string keeps the default.
- An empty value for a non-text field is absent; a form field named `image_prompts` is ignored.
- Files: a missing part and an empty part are both absent.
"""

from __future__ import annotations

import types
import typing
from typing import Any, TypeVar

from pydantic import BaseModel, Field, ValidationError, create_model
from pydantic.fields import FieldInfo
from sanic import Request

from contracts import ControlNetType, OutpaintDirection, UovMethod
from edge.errors import InvalidRequest
from edge.inputs import ImageSource
from edge.parsing import load_json
from edge.schemas.requests import CommonRequest, EnhanceCtrlNet, EnhanceOptions

M = TypeVar("M", bound=BaseModel)
LIST_FIELDS = ("style_selections", "outpaint_selections")
JSON_FIELDS = ("loras", "advanced_params")
IGNORED_FIELDS = ("image_prompts",)
ENHANCE_TABS = 3


class CommonForm(CommonRequest):
    """The common fields as v1 form fields; `save_meta` defaults to false in forms."""

    save_meta: bool = False


class UpscaleVaryForm(CommonForm):
    """`POST /v1/generation/image-upscale-vary` (file `input_image`, required)."""

    uov_method: UovMethod
    upscale_value: float | None = Field(None, ge=1.0, le=5.0)


class InpaintOutpaintForm(CommonForm):
    """`POST /v1/generation/image-inpaint-outpaint` (files `input_image` required, `input_mask`)."""

    inpaint_additional_prompt: str = ""
    outpaint_selections: list[OutpaintDirection] = Field(default_factory=list)
    outpaint_distance_left: int = 0
    outpaint_distance_right: int = 0
    outpaint_distance_top: int = 0
    outpaint_distance_bottom: int = 0


def _slot_fields() -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for i in range(1, 5):
        fields[f"cn_stop{i}"] = (float | None, Field(None, ge=0, le=1))
        fields[f"cn_weight{i}"] = (float | None, Field(None, ge=0, le=2))
        fields[f"cn_type{i}"] = (ControlNetType, ControlNetType.IMAGE_PROMPT)
    return fields


ImagePromptForm: type[InpaintOutpaintForm] = create_model(  # type: ignore[call-overload]
    "ImagePromptForm",
    __base__=InpaintOutpaintForm,
    __doc__="`POST /v1/generation/image-prompt`: inpaint fields (all optional) + `cn_img1..4` slots.",
    **_slot_fields(),
)


def _enhance_fields() -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, info in EnhanceCtrlNet.model_fields.items():
        default = "" if name == "enhance_mask_dino_prompt" else info.default
        for i in range(1, ENHANCE_TABS + 1):
            fields[f"{name}_{i}"] = (info.annotation, FieldInfo.merge_field_infos(info, default=default))
    return fields


class _EnhanceFormBase(CommonForm, EnhanceOptions):
    pass


ImageEnhanceForm: type[_EnhanceFormBase] = create_model(  # type: ignore[call-overload]
    "ImageEnhanceForm",
    __base__=_EnhanceFormBase,
    __doc__="`POST /v1/generation/image-enhance`: file `enhance_input_image` + `enhance_*_1..3` fields.",
    **_enhance_fields(),
)


def enhance_tabs(form: BaseModel) -> list[EnhanceCtrlNet]:
    """The flattened `enhance_*_N` fields of a v1 form as three tabs."""
    values = form.model_dump()
    return [
        EnhanceCtrlNet.model_validate({name: values[f"{name}_{i}"] for name in EnhanceCtrlNet.model_fields})
        for i in range(1, ENHANCE_TABS + 1)
    ]


def _is_text(annotation: Any) -> bool:
    if annotation is str:
        return True
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return str in typing.get_args(annotation)
    return False


def _split(values: list[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def form_values(request: Request, model: type[BaseModel]) -> dict[str, Any]:
    """The form fields `model` knows, shaped by the v1 rules, ready for `model_validate`."""
    form = request.form or {}
    values: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if name in IGNORED_FIELDS or name not in form:
            continue
        given: list[str] = form.getlist(name)  # type: ignore[attr-defined]
        if name in LIST_FIELDS:
            values[name] = _split(given)
            continue
        raw = given[0] if given else ""
        if name in JSON_FIELDS:
            if raw.strip():
                values[name] = load_json(raw, ["body", name])
        elif raw != "" or _is_text(info.annotation):
            values[name] = raw
    return values


def _check_readable(request: Request) -> None:
    # Sanic logs a multipart body it cannot split and reads it as an empty form, which would run the job
    # on defaults; say so instead.
    content_type = request.headers.get("content-type", "").lower()
    if request.body and content_type.startswith("multipart/") and "boundary=" not in content_type:
        raise InvalidRequest(
            [
                {
                    "type": "multipart_invalid",
                    "loc": ["body"],
                    "msg": "a multipart body needs `boundary=` in its Content-Type",
                    "input": None,
                }
            ]
        )


def parse_form(request: Request, model: type[M]) -> M:
    """Validate a v1 multipart (or url-encoded) body against `model`; 422s name the field."""
    _check_readable(request)
    try:
        return model.model_validate(form_values(request, model))
    except ValidationError as error:
        raise InvalidRequest.from_validation(error, "body") from None


def form_file(request: Request, name: str) -> ImageSource | None:
    """An uploaded image part, or a text part holding base64 / a URL; empty means absent."""
    upload = request.files.get(name) if request.files else None
    if upload is not None and upload.body:
        return bytes(upload.body)
    text = request.form.get(name) if request.form else None
    return text or None
