"""Property-based fuzzing of every body-taking route with hypothesis: request bodies grown from our request
models, with fields swapped for wrong types, huge numbers, odd text, nulls, nested junk and extra keys;
raw bytes that are not JSON at all; multipart variants of the v1 forms; junk query strings. Whatever
comes in, the answer is never a 5xx, and every 4xx is JSON that names a field or says what is wrong."""

from __future__ import annotations

import base64
import copy
import ipaddress
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from contracts import AdvancedParams, Lora
from edge import egress
from edge.schemas import forms
from edge.schemas.requests import (
    CommonRequest,
    EnhanceCtrlNet,
    GenerateMaskRequest,
    ImageEnhanceRequest,
    ImagePromptJson,
    ImagePromptRequest,
    InpaintOutpaintRequest,
    TextToImageWithIPRequest,
    UpscaleVaryRequest,
)
from tests.security.harness import BAD_IMAGES, EdgeUnderTest, png

B64 = base64.b64encode(png()).decode()
SLOT = {"cn_img": B64}
INPAINT_BASE = {"input_image": B64, "input_mask": B64}
JSON_ROUTES: dict[str, tuple[type[BaseModel], dict[str, Any]]] = {
    "/v1/generation/text-to-image": (CommonRequest, {}),
    "/v2/generation/text-to-image-with-ip": (TextToImageWithIPRequest, {"image_prompts": [SLOT]}),
    "/v2/generation/image-upscale-vary": (UpscaleVaryRequest, {"input_image": B64}),
    "/v2/generation/image-inpaint-outpaint": (InpaintOutpaintRequest, INPAINT_BASE),
    "/v2/generation/image-inpait-outpaint": (InpaintOutpaintRequest, INPAINT_BASE),
    "/v2/generation/image-prompt": (ImagePromptRequest, {"image_prompts": [SLOT]}),
    "/v2/generation/image-enhance": (
        ImageEnhanceRequest,
        {"enhance_input_image": B64, "enhance_ctrlnets": [{"enhance_enabled": True}]},
    ),
    "/v1/tools/generate_mask": (GenerateMaskRequest, {"image": B64}),
}
PROMPT_FILES = ("input_image", "input_mask", "cn_img1", "cn_img2", "cn_img3", "cn_img4")
VARY = {"uov_method": "Vary (Subtle)"}
FORM_ROUTES: dict[str, tuple[type[BaseModel] | None, tuple[str, ...], dict[str, str]]] = {
    "/v1/generation/image-upscale-vary": (forms.UpscaleVaryForm, ("input_image",), VARY),
    "/v1/generation/image-inpaint-outpaint": (forms.InpaintOutpaintForm, ("input_image", "input_mask"), {}),
    "/v1/generation/image-inpait-outpaint": (forms.InpaintOutpaintForm, ("input_image", "input_mask"), {}),
    "/v1/generation/image-prompt": (forms.ImagePromptForm, PROMPT_FILES, {}),
    "/v1/generation/image-enhance": (forms.ImageEnhanceForm, ("enhance_input_image",), {}),
    "/v1/tools/describe-image": (None, ("image",), {}),
}  # fmt: skip
# The cancel route's only input is its path: `routes()` fills it with `x.png`, an unknown job (404).
NO_BODY = {"/v1/generation/stop", "/v1/engines/refresh-models", "/v1/generation/job/x.png/cancel"}
QUERY_ROUTES = {
    "/v1/generation/query-job": ("job_id", "require_step_preview"),
    "/v1/generation/job-history": ("job_id", "page", "page_size", "delete"),
    "/v1/tools/describe-image": ("image_type", "type"),
    "/v1/generation/text-to-image": ("accept",),
}
FUZZ = settings(
    max_examples=50,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

ODD_TEXT = st.sampled_from(
    [
        "",
        " ",
        "None",
        "-1",
        "0",
        "1e999",
        "NaN",
        "true",
        "Speed",
        "Hyper-SD",
        "ImagePrompt",
        "FaceSwap",
        "Left",
        "Upscale (Custom)",
        "64*64",
        "4097*64",
        "1152×896",
        "http://127.0.0.1/x.png",
        "http://[::ffff:127.0.0.1]/",
        "http://2130706433/",
        "https://img.example/a.png",
        "ftp://a/",
        f"data:image/png;base64,{B64}",
        B64,
        "data:text/plain;base64,aGk=",
        "\x00",
        "\u202e\ufeff\u0301",
        "💥" * 40,
        "../../etc/passwd",
        "%s%n%x",
        "a" * 10_001,
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    ODD_TEXT,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=12,
)


# JSON the encoder never writes: non-finite numbers, lone surrogates, huge literals, deep nesting.
NASTY = [
    b"NaN",
    b"-Infinity",
    b"1e999",
    b'"\\ud800"',
    b'["\\udfff"]',
    b"9" * 5000,
    b"[" * 3000 + b"]" * 3000,
    b'{"a":' * 50 + b"1" + b"}" * 50,
]
SENTINEL = "@@nasty@@"


def shaped(model: type[BaseModel]) -> st.SearchStrategy[dict[str, Any]]:
    """A dict with some of `model`'s keys, each holding anything."""
    return st.dictionaries(st.sampled_from(sorted(model.model_fields)), VALUES | ODD_TEXT, max_size=4)


NESTED: dict[str, st.SearchStrategy[Any]] = {
    "advanced_params": shaped(AdvancedParams),
    "loras": st.lists(shaped(Lora), max_size=6),
    "image_prompts": st.lists(shaped(ImagePromptJson) | st.just(SLOT), max_size=6),
    "enhance_ctrlnets": st.lists(shaped(EnhanceCtrlNet), max_size=4),
}


@st.composite
def json_bodies(draw: st.DrawFn, model: type[BaseModel], base: dict[str, Any]) -> bytes:
    """A body that starts valid, then has fields replaced and extra keys added; or not JSON at all."""
    body = copy.deepcopy(base)
    for name in draw(st.lists(st.sampled_from(sorted(model.model_fields)), max_size=5, unique=True)):
        body[name] = draw(NESTED.get(name, VALUES) | VALUES)
    for _ in range(draw(st.integers(0, 2))):
        body[draw(st.text(max_size=12))] = draw(VALUES)
    if draw(st.booleans()):
        body[draw(st.sampled_from(sorted(model.model_fields)))] = SENTINEL
    raw = json.dumps(body).encode().replace(f'"{SENTINEL}"'.encode(), draw(st.sampled_from(NASTY)), 1)
    return draw(
        st.sampled_from([raw, raw[: len(raw) // 2]]) | st.binary(max_size=64) | st.just(raw)
        if draw(st.integers(0, 9)) == 0
        else st.just(raw)
    )


@st.composite
def multipart(
    draw: st.DrawFn, model: type[BaseModel] | None, files: tuple[str, ...], base: dict[str, str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    data: dict[str, Any] = dict(base)
    names = sorted(model.model_fields) if model else []
    for name in draw(st.lists(st.sampled_from(names), max_size=6, unique=True)) if names else []:
        text = (
            st.text(max_size=30)
            | ODD_TEXT
            | VALUES.map(json.dumps)
            | st.sampled_from(NASTY).map(bytes.decode)
        )
        data[name] = draw(st.lists(text, min_size=1, max_size=3) if name in forms.LIST_FIELDS else text)
    images = st.sampled_from([png(), b"", *(bad for bad, _ in BAD_IMAGES.values())]) | st.binary(max_size=64)
    uploads = {}
    for name in draw(st.lists(st.sampled_from(files), max_size=len(files), unique=True)):
        uploads[name] = (
            draw(st.text(max_size=10)) or "x",
            draw(images),
            draw(st.sampled_from(["image/png", ""])),
        )
    if draw(st.booleans()) and files:  # an image given as a text part: base64, data URI, URL or junk
        data[draw(st.sampled_from(files))] = draw(ODD_TEXT)
    return data, uploads


def check(answer: Any) -> None:
    """No 5xx; a 4xx says what is wrong, as JSON."""
    event(f"HTTP {answer.status_code}")  # `--hypothesis-show-statistics` shows how many got through
    assert answer.status_code < 500, (answer.status_code, answer.text[:2000])
    if answer.status_code >= 400:
        body = json.loads(answer.content)
        if answer.status_code == 404 and body.get("job_status") == "Job not found":
            return  # query-job's Fooocus-API answer for an unknown job
        detail = body["detail"]
        if isinstance(detail, list):
            assert detail, answer.text
            for item in detail:
                assert item["loc"] and item["loc"][0] in ("body", "query") and item["msg"], item
        else:
            assert isinstance(detail, str) and detail.strip(), answer.text


@pytest.fixture(scope="module", autouse=True)
def no_real_dns() -> Iterator[None]:
    """Literal addresses resolve to themselves, `localhost` inward, every name to nothing: the fuzz
    never waits on DNS, and every URL it invents still meets the real policy."""

    async def resolve(host: str, port: int) -> list[str]:
        if host == "localhost":
            return ["127.0.0.1"]
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            raise OSError(f"no such host {host!r}") from None

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(egress, "resolve", resolve)
        yield


@pytest.fixture
def edge(make_edge: Callable[..., EdgeUnderTest]) -> EdgeUnderTest:
    return make_edge(max_request_bytes=4 * 1024**2)


def test_every_body_taking_route_is_fuzzed(edge: EdgeUnderTest) -> None:
    posts = {path for method, path in edge.routes() if method == "POST"}
    assert posts == set(JSON_ROUTES) | set(FORM_ROUTES) | NO_BODY


@pytest.mark.parametrize("path", sorted(JSON_ROUTES))
@FUZZ
@given(data=st.data())
def test_json_routes_never_answer_5xx(edge: EdgeUnderTest, path: str, data: st.DataObject) -> None:
    model, base = JSON_ROUTES[path]
    raw = data.draw(json_bodies(model, base))
    check(edge.call("POST", path, content=raw, headers={"Content-Type": "application/json"}))


@pytest.mark.parametrize("path", sorted(FORM_ROUTES))
@FUZZ
@given(data=st.data())
def test_form_routes_never_answer_5xx(edge: EdgeUnderTest, path: str, data: st.DataObject) -> None:
    fields, uploads = data.draw(multipart(*FORM_ROUTES[path]))
    check(edge.call("POST", path, data=fields, files=uploads or None))


@pytest.mark.parametrize("path", sorted(QUERY_ROUTES))
@FUZZ
@given(data=st.data())
def test_query_strings_never_answer_5xx(edge: EdgeUnderTest, path: str, data: st.DataObject) -> None:
    names = QUERY_ROUTES[path]
    params = data.draw(st.dictionaries(st.sampled_from(names), st.text(max_size=20) | ODD_TEXT, max_size=4))
    method = "GET" if path.startswith(("/v1/generation/query", "/v1/generation/job")) else "POST"
    check(edge.call(method, path, params=params))
