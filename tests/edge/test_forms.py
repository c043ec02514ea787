"""v1 multipart parsing, field by field (spec §5), with the fixes: 422s naming the field, never a 500."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from sanic.request import File, RequestParameters

from contracts import ControlNetType, OutpaintDirection, UovMethod
from contracts.params import DEFAULT_LORAS, DEFAULT_STYLES
from edge.errors import InvalidRequest
from edge.schemas import forms


def request(fields: dict[str, Any] | None = None, files: dict[str, bytes] | None = None) -> Any:
    form = RequestParameters({k: v if isinstance(v, list) else [v] for k, v in (fields or {}).items()})
    uploads = RequestParameters(
        {k: [File("application/octet-stream", v, k)] for k, v in (files or {}).items()}
    )
    return SimpleNamespace(form=form, files=uploads, headers={}, body=b"")


def parse(model: type, **fields: Any) -> Any:
    return forms.parse_form(request(fields), model)


def loc_of(model: type, **fields: Any) -> list[Any]:
    with pytest.raises(InvalidRequest) as caught:
        parse(model, **fields)
    return caught.value.detail[0]["loc"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("True", True),
        ("1", True),
        ("yes", True),
        ("on", True),
        ("False", False),
        ("0", False),
        ("off", False),
        ("no", False),
    ],
)
def test_booleans_are_lax(raw: str, expected: bool) -> None:
    assert parse(forms.CommonForm, async_process=raw).async_process is expected


def test_bad_boolean_names_the_field() -> None:
    assert loc_of(forms.CommonForm, require_base64="maybe") == ["body", "require_base64"]


def test_defaults_match_json_except_save_meta() -> None:
    form = parse(forms.CommonForm)
    assert form.save_meta is False
    assert form.style_selections == list(DEFAULT_STYLES) and form.loras == list(DEFAULT_LORAS)
    assert form.sharpness == 2.0 and form.performance_selection == "Speed"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["Fooocus V2", "Fooocus Sharp"], ["Fooocus V2", "Fooocus Sharp"]),
        ("Fooocus V2, Fooocus Sharp", ["Fooocus V2", "Fooocus Sharp"]),
        (["Fooocus V2,SAI Anime", " Fooocus Sharp "], ["Fooocus V2", "SAI Anime", "Fooocus Sharp"]),
        ("", []),
    ],
)
def test_style_selections_repeated_or_comma_separated(given: Any, expected: list[str]) -> None:
    assert parse(forms.CommonForm, style_selections=given).style_selections == expected


def test_outpaint_selections_are_split_and_stripped() -> None:
    form = parse(forms.InpaintOutpaintForm, outpaint_selections=["Left, Top", "Bottom"])
    assert form.outpaint_selections == [
        OutpaintDirection.LEFT,
        OutpaintDirection.TOP,
        OutpaintDirection.BOTTOM,
    ]
    assert loc_of(forms.InpaintOutpaintForm, outpaint_selections="Left,Up") == [
        "body",
        "outpaint_selections",
        1,
    ]
    assert parse(forms.InpaintOutpaintForm).outpaint_distance_left == 0


def test_loras_is_a_json_string() -> None:
    form = parse(forms.CommonForm, loras='[{"enabled": true, "model_name": "x.safetensors", "weight": 0.5}]')
    assert [(lora.model_name, lora.weight) for lora in form.loras] == [("x.safetensors", 0.5)]
    assert parse(forms.CommonForm, loras="").loras == list(DEFAULT_LORAS)
    # the form description's own example lacks `enabled`: a 422 naming it (Fooocus-API answered 500)
    assert loc_of(forms.CommonForm, loras='[{"model_name": "x", "weight": 0.5}]') == [
        "body",
        "loras",
        0,
        "enabled",
    ]
    assert loc_of(forms.CommonForm, loras="[{") == ["body", "loras"]


def test_advanced_params_bad_json_or_range_is_422_not_a_silent_reset() -> None:
    form = parse(forms.CommonForm, advanced_params='{"overwrite_step": 3, "adaptive_cfg": 5}')
    assert (form.advanced_params.overwrite_step, form.advanced_params.adaptive_cfg) == (3, 5)
    assert parse(forms.CommonForm, advanced_params="").advanced_params.overwrite_step == -1
    assert loc_of(forms.CommonForm, advanced_params="{bad") == ["body", "advanced_params"]
    assert loc_of(forms.CommonForm, advanced_params='{"clip_skip": 99}') == [
        "body",
        "advanced_params",
        "clip_skip",
    ]


def test_empty_values_of_non_text_fields_are_absent_and_text_stays() -> None:
    form = parse(
        forms.UpscaleVaryForm, uov_method="Vary (Subtle)", upscale_value="", image_seed="", prompt=""
    )
    assert (form.upscale_value, form.image_seed, form.prompt) == (None, -1, "")


def test_uov_method_is_required_and_an_enum() -> None:
    assert loc_of(forms.UpscaleVaryForm) == ["body", "uov_method"]
    assert loc_of(forms.UpscaleVaryForm, uov_method="Vary") == ["body", "uov_method"]
    assert parse(forms.UpscaleVaryForm, uov_method="Upscale (Custom)", upscale_value="3").upscale_value == 3.0
    assert parse(forms.UpscaleVaryForm, uov_method="Disabled").uov_method is UovMethod.DISABLED


def test_image_prompt_slots_and_ignored_image_prompts_field() -> None:
    form = parse(
        forms.ImagePromptForm,
        cn_stop1="0.7",
        cn_type2="FaceSwap",
        image_prompts=["{'cn_stop': 0.6}", "{'cn_stop': 0.6}"],
    )
    assert (form.cn_stop1, form.cn_weight1, form.cn_type1) == (0.7, None, ControlNetType.IMAGE_PROMPT)
    assert form.cn_type2 is ControlNetType.FACE_SWAP
    assert loc_of(forms.ImagePromptForm, cn_weight3="2.5") == ["body", "cn_weight3"]
    assert loc_of(forms.ImagePromptForm, cn_type4="Canny") == ["body", "cn_type4"]


def test_enhance_fields_are_flattened_per_tab() -> None:
    form = parse(
        forms.ImageEnhanceForm,
        enhance_enabled_1="True",
        enhance_mask_dino_prompt_1="face",
        enhance_enabled_3="on",
        enhance_mask_model_3="u2net",
        enhance_uov_method="Disabled",
    )
    tabs = forms.enhance_tabs(form)
    assert [t.enhance_enabled for t in tabs] == [True, False, True]
    assert tabs[0].enhance_mask_dino_prompt == "face" and tabs[1].enhance_mask_dino_prompt == ""  # v1 default
    assert tabs[2].enhance_mask_model == "u2net" and form.enhance_uov_method is UovMethod.DISABLED
    assert parse(forms.ImageEnhanceForm).enhance_uov_method is UovMethod.VARY_STRONG
    assert loc_of(forms.ImageEnhanceForm, enhance_inpaint_strength_2="3") == [
        "body",
        "enhance_inpaint_strength_2",
    ]


def test_files_empty_parts_are_absent_and_text_parts_are_sources() -> None:
    req = request(
        {"input_mask": "", "cn_img1": "data:image/png;base64,AAAA"}, {"input_image": b"abc", "x": b""}
    )
    assert forms.form_file(req, "input_image") == b"abc"
    assert forms.form_file(req, "x") is None
    assert forms.form_file(req, "input_mask") is None
    assert forms.form_file(req, "cn_img1") == "data:image/png;base64,AAAA"
    assert forms.form_file(req, "missing") is None
