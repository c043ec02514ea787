"""Hostile bodies through the real app: bad images, oversized bodies and fields, broken JSON, refused
webhook targets. Each is a 4xx JSON naming the field, nothing is queued, and the edge keeps answering."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from edge import egress
from tests.security.harness import BAD_IMAGES, EdgeUnderTest, b64, png

Make = Callable[..., EdgeUnderTest]


def assert_names(answer: Any, loc: list[Any], needle: str = "", status: int = 422) -> None:
    assert answer.status_code == status, answer.text
    [item] = answer.json["detail"]
    assert item["loc"] == loc and needle in item["msg"], item


def assert_alive(edge: EdgeUnderTest) -> None:
    assert edge.bus.jobs == []
    assert edge.call("GET", "/ping").json == "pong"


# ---- images ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(BAD_IMAGES))
def test_bad_images_are_422_on_every_way_in(make_edge: Make, name: str) -> None:
    data, needle = BAD_IMAGES[name]
    edge = make_edge()
    v2 = edge.call("POST", "/v2/generation/image-upscale-vary", json={"input_image": b64(data)})
    assert_names(v2, ["body", "input_image"], needle)
    uri = f"data:image/png;base64,{b64(data)}"
    slot = edge.call("POST", "/v2/generation/image-prompt", json={"image_prompts": [{"cn_img": uri}]})
    assert_names(slot, ["body", "image_prompts", 0, "cn_img"], needle)
    v1 = edge.call(
        "POST",
        "/v1/generation/image-upscale-vary",
        data={"uov_method": "Vary (Subtle)"},
        files={"input_image": ("x.png", data, "image/png")},
    )
    assert_names(v1, ["body", "input_image"], needle)
    mask = edge.call("POST", "/v1/tools/generate_mask", json={"image": b64(data)})
    assert_names(mask, ["body", "image"], needle)
    describe = edge.call("POST", "/v1/tools/describe-image", files={"image": ("x", data, "image/png")})
    assert_names(describe, ["body", "image"], needle)
    assert_alive(edge)


def test_the_pixel_cap_holds_below_the_side_cap(make_edge: Make) -> None:
    edge = make_edge(max_image_pixels=64 * 64)
    answer = edge.call("POST", "/v2/generation/image-upscale-vary", json={"input_image": b64(png((65, 64)))})
    assert_names(answer, ["body", "input_image"], "too many pixels")
    assert_alive(edge)


def test_good_images_in_every_allowed_format_pass(make_edge: Make) -> None:
    edge = make_edge()
    for fmt in ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF"):
        answer = edge.call(
            "POST", "/v2/generation/image-upscale-vary", json={"input_image": b64(png(fmt=fmt))}
        )
        assert answer.status_code == 200, (fmt, answer.text)
    assert len(edge.bus.jobs) == 6


def test_oversized_base64_is_refused_before_decoding(make_edge: Make) -> None:
    edge = make_edge(max_input_bytes=1000)
    text = "A" * 2000  # valid base64 of 1500 zero bytes
    answer = edge.call("POST", "/v2/generation/image-upscale-vary", json={"input_image": text})
    assert_names(answer, ["body", "input_image"], "larger than 1000 bytes")
    upload = edge.call(
        "POST",
        "/v1/generation/image-upscale-vary",
        data={"uov_method": "Vary (Subtle)"},
        files={"input_image": ("x.png", b"\0" * 1001, "image/png")},
    )
    assert_names(upload, ["body", "input_image"], "larger than 1000 bytes")
    assert_alive(edge)


@pytest.mark.parametrize(
    "source",
    [
        "http://127.0.0.1/x.png",
        "http://2130706433/x.png",
        "http://[::1]/x.png",
        "http://169.254.169.254/latest/meta-data/",
        "file:///etc/passwd",
        "data:text/html;base64,PGI+",
    ],
)
def test_inner_and_odd_image_urls_are_422(make_edge: Make, source: str) -> None:
    edge = make_edge()
    answer = edge.call("POST", "/v2/generation/image-upscale-vary", json={"input_image": source})
    assert answer.status_code == 422 and answer.json["detail"][0]["loc"] == ["body", "input_image"]
    assert_alive(edge)


# ---- body and field sizes -------------------------------------------------------------------------------


def test_a_body_over_the_limit_is_413_json(make_edge: Make) -> None:
    edge = make_edge(max_request_bytes=4096)
    answer = edge.call("POST", "/v1/generation/text-to-image", json={"prompt": "x" * 5000})
    assert answer.status_code == 413 and "4096 bytes" in answer.json["detail"]
    form = edge.call(
        "POST", "/v1/generation/image-upscale-vary", files={"input_image": ("x", b"\0" * 5000, "image/png")}
    )
    assert form.status_code == 413
    assert_alive(edge)


LONG = "x" * 10_001
T2I, IP, ENHANCE = (
    "/v1/generation/text-to-image",
    "/v2/generation/text-to-image-with-ip",
    "/v2/generation/image-enhance",
)
ONE_LORA = {"enabled": True, "model_name": "None"}
FIELD_LIMITS: list[tuple[str, dict[str, Any], str, str]] = [
    (T2I, {"prompt": LONG}, "prompt", "10000 characters"),
    (T2I, {"negative_prompt": LONG}, "negative_prompt", "10000"),
    (T2I, {"style_selections": ["Fooocus V2"] * 301}, "style_selections", "300 items"),
    (T2I, {"loras": [ONE_LORA] * 301}, "loras", "300 items"),
    (T2I, {"advanced_params": {"sampler_name": LONG}}, "advanced_params", "at sampler_name"),
    (T2I, {"loras": [{**ONE_LORA, "model_name": LONG}]}, "loras", "at [0].model_name"),
    (T2I, {"webhook_url": "http://a.example/" + LONG}, "webhook_url", "10000"),
    (IP, {"image_prompts": [{}] * 17}, "image_prompts", "16 items"),
    (ENHANCE, {"enhance_ctrlnets": [{}] * 17}, "enhance_ctrlnets", "16 items"),
    (ENHANCE, {"enhance_ctrlnets": [{"enhance_prompt": LONG}]}, "enhance_ctrlnets", "[0].enhance_prompt"),
    (
        "/v2/generation/image-inpaint-outpaint",
        {"inpaint_additional_prompt": LONG},
        "inpaint_additional_prompt",
        "",
    ),
    ("/v1/tools/generate_mask", {"image": "AAAA", "dino_prompt_text": LONG}, "dino_prompt_text", "10000"),
]


@pytest.mark.parametrize(("path", "body", "field", "needle"), FIELD_LIMITS)
def test_oversized_fields_are_422_naming_the_field(
    make_edge: Make, path: str, body: dict[str, Any], field: str, needle: str
) -> None:
    edge = make_edge()
    assert_names(edge.call("POST", path, json=body), ["body", field], needle)
    assert_alive(edge)


def test_oversized_form_fields_are_422_naming_the_field(make_edge: Make) -> None:
    edge = make_edge()
    form = edge.call("POST", "/v1/generation/image-prompt", data={"prompt": LONG})
    assert_names(form, ["body", "prompt"], "10000 characters")
    nested = edge.call(
        "POST", "/v1/generation/image-prompt", data={"advanced_params": json.dumps({"vae_name": LONG})}
    )
    assert_names(nested, ["body", "advanced_params"], "at vae_name")
    assert_alive(edge)


BROKEN_JSON: list[tuple[bytes, str]] = [
    (b'{"prompt": "a", ', "Invalid JSON"),
    (b"\xff\xfe{}", "Invalid JSON"),
    (b"[" * 100_000, "nested too deeply"),
    (b'{"sharpness": NaN}', "NaN is not a JSON number"),
    (b'{"sharpness": Infinity}', "Infinity is not a JSON number"),
    (b'{"sharpness": 1e999}', "not a finite number"),
    (b'{"image_seed": ' + b"9" * 5000 + b"}", "Invalid JSON"),
    (b'{"advanced_params": {"freeu_b1": -Infinity}}', "is not a JSON number"),
]


@pytest.mark.parametrize(("raw", "needle"), BROKEN_JSON)
def test_broken_json_is_422(make_edge: Make, raw: bytes, needle: str) -> None:
    edge = make_edge()
    assert_names(edge.call("POST", "/v2/generation/text-to-image-with-ip", content=raw), ["body"], needle)
    form = edge.call("POST", "/v1/generation/image-prompt", data={"advanced_params": raw.decode("latin-1")})
    assert form.status_code == 422 and form.json["detail"][0]["loc"][:1] == ["body"]
    assert_alive(edge)


@pytest.mark.parametrize(
    ("raw", "loc", "needle"),
    [
        (b'{"prompt": "\\ud800"}', ["body", "prompt"], "lone surrogate"),
        (b'{"loras": [{"enabled": true, "model_name": "\\udfff"}]}', ["body", "loras"], "lone surrogate"),
        (
            b'{"advanced_params": ' + b'{"a": ' * 20 + b"1" + b"}" * 20 + b"}",
            ["body", "advanced_params"],
            "levels",
        ),
        (b"[]", ["body"], "JSON object"),
        (b"null", ["body"], "JSON object"),
        (b'"text"', ["body"], "JSON object"),
    ],
)
def test_unencodable_or_misshapen_values_are_422(
    make_edge: Make, raw: bytes, loc: list[Any], needle: str
) -> None:
    edge = make_edge()
    assert_names(edge.call("POST", "/v1/generation/text-to-image", content=raw), loc, needle)
    assert_alive(edge)


def test_huge_numbers_and_wrong_types_are_422(make_edge: Make) -> None:
    edge = make_edge()
    for body, loc in (
        ({"image_number": 10**30}, ["body", "image_number"]),
        ({"guidance_scale": 1e300}, ["body", "guidance_scale"]),
        ({"advanced_params": {"overwrite_step": -(10**20)}}, ["body", "advanced_params", "overwrite_step"]),
        ({"performance_selection": None}, ["body", "performance_selection"]),
        ({"loras": "none"}, ["body", "loras"]),
        ({"style_selections": {"a": 1}}, ["body", "style_selections"]),
    ):
        answer = edge.call("POST", "/v1/generation/text-to-image", json=body)
        assert answer.status_code == 422 and answer.json["detail"][0]["loc"] == loc, (body, answer.text)
    # An out-of-range seed is Fooocus-API's "pick one at random", not an error.
    assert edge.call("POST", "/v1/generation/text-to-image", json={"image_seed": 10**30}).status_code == 200
    assert edge.bus.jobs[0].params.image_seed >= 0


# ---- webhook targets ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://169.254.169.254/latest/",
        "http://2130706433/",
        "http://0.0.0.0/",
        "ftp://a.example/hook",
        "javascript:alert(1)",
        "not a url",
    ],
)
def test_a_refused_webhook_url_is_422_at_submit(make_edge: Make, target: str) -> None:
    edge = make_edge()
    answer = edge.call(
        "POST", "/v1/generation/text-to-image", json={"webhook_url": target, "async_process": True}
    )
    assert_names(answer, ["body", "webhook_url"])
    v1 = edge.call("POST", "/v1/generation/image-prompt", data={"webhook_url": target})
    assert_names(v1, ["body", "webhook_url"])
    assert_alive(edge)


def test_the_operators_default_webhook_is_trusted(make_edge: Make) -> None:
    edge = make_edge(webhook_url="http://10.1.2.3/hook")
    answer = edge.call("POST", "/v1/generation/text-to-image", json={"async_process": True})
    assert answer.status_code == 200, answer.text  # configuration, not input: an internal receiver is fine
    own = {"async_process": True, "webhook_url": "http://10.1.2.3/other"}
    assert_names(edge.call("POST", "/v1/generation/text-to-image", json=own), ["body", "webhook_url"], "")
    assert len(edge.bus.jobs) == 1  # only the first was queued


def test_private_webhooks_pass_when_allowed(make_edge: Make) -> None:
    edge = make_edge(webhook_url="http://127.0.0.1:9/default", allow_private_urls=True)
    for body in ({}, {"webhook_url": "http://[::1]:9/own"}):
        answer = edge.call("POST", "/v1/generation/text-to-image", json={**body, "async_process": True})
        assert answer.status_code == 200, answer.text
    assert [job.webhook_url for job in edge.bus.jobs] == [None, "http://[::1]:9/own"]


def test_a_public_webhook_passes(make_edge: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    monkeypatch.setattr(egress, "resolve", resolve)
    edge = make_edge()
    body = {"webhook_url": "https://hooks.example/x", "async_process": True}
    assert edge.call("POST", "/v1/generation/text-to-image", json=body).status_code == 200
    assert edge.bus.jobs[0].webhook_url == "https://hooks.example/x"


def test_a_multipart_body_without_a_boundary_is_422_not_an_empty_form(make_edge: Make) -> None:
    edge = make_edge()
    body = b'--x\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nhi\r\n--x--\r\n'
    for path in ("/v1/generation/image-prompt", "/v1/generation/image-inpaint-outpaint"):
        answer = edge.call("POST", path, content=body, headers={"Content-Type": "multipart/form-data"})
        assert_names(answer, ["body"], "boundary=")
    assert_alive(edge)
