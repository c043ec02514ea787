"""Input images: base64, data URIs and URLs decoded and checked before anything is stored or queued."""

from __future__ import annotations

import asyncio
import base64
import io
from typing import Any

import httpx
import pytest
from PIL import Image

from contracts import ControlNetType, ImageInputs, ImagePrompt
from edge import egress
from edge.egress import address_refused
from edge.errors import InvalidRequest
from edge.inputs import (
    ImageFetcher,
    ImageSet,
    InputImageError,
    decode_base64,
    to_png,
    with_keys,
)
from edge.settings import EdgeSettings

LOC = ("body", "input_image")


def png(size: tuple[int, int] = (8, 8), fmt: str = "PNG", mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, 128 if mode in ("L", "P") else (10, 20, 30, 255)[: len(mode)]).save(out, format=fmt)
    return out.getvalue()


def settings(**overrides: Any) -> EdgeSettings:
    return EdgeSettings(_env_file=None, **overrides)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "text",
    [
        base64.b64encode(png()).decode(),
        "data:image/png;base64," + base64.b64encode(png()).decode(),
        "data:image/jpeg;charset=utf-8;base64," + base64.b64encode(png()).decode(),
        base64.b64encode(png()).decode().rstrip("="),
        "\n".join(base64.b64encode(png()).decode()[i : i + 60] for i in range(0, 400, 60)),
        base64.urlsafe_b64encode(png()).decode(),
    ],
)
def test_base64_forms_decode(text: str) -> None:
    assert decode_base64(text, LOC)[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("text", ["%%%", "data:text/plain;base64,aGk=", "data:image/png,raw"])
def test_bad_base64_names_the_field(text: str) -> None:
    with pytest.raises(InputImageError) as caught:
        decode_base64(text, LOC)
    assert caught.value.loc == LOC


def test_images_are_verified_fully_decoded_and_stored_as_png() -> None:
    for data in (png(fmt="JPEG"), png(mode="RGBA"), png(mode="P"), png(mode="L"), png(fmt="WEBP")):
        out = to_png(data, LOC, settings())
        assert Image.open(io.BytesIO(out)).format == "PNG"


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (png((64, 64))[:60], "not a readable image"),
        (b"not an image at all", "not a readable image"),
        (png((100, 100)), "decompression bomb"),
        (png((8, 300)), "a side"),
        (png((20, 20)) + b"\0" * 2000, "larger than"),
    ],
)
def test_bad_images_are_refused(data: bytes, needle: str) -> None:
    limits = settings(max_image_pixels=64 * 64, max_image_side=256, max_input_bytes=1500)
    with pytest.raises(InputImageError) as caught:
        to_png(data, LOC, limits)
    assert needle in caught.value.message and caught.value.loc == LOC


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("172.16.0.1", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),  # cloud metadata
        ("100.64.0.1", True),
        ("0.0.0.0", True),
        ("224.0.0.1", True),
        ("240.0.0.1", True),
        ("::1", True),
        ("fe80::1", True),
        ("fd00:ec2::254", True),
        ("::ffff:127.0.0.1", True),
        ("93.184.216.34", False),
        ("2606:2800:220:1:248:1893:25c8:1946", False),
    ],
)
def test_address_classes(address: str, refused: bool) -> None:
    assert address_refused(address) is refused


class Web:
    """A fake web: a DNS table and a handler per host, recording what was requested."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, dns: dict[str, list[str]]) -> None:
        self.dns = dns
        self.seen: list[httpx.Request] = []

        async def resolve(host: str, port: int) -> list[str]:
            if host not in dns:
                raise OSError("no such host")
            return dns[host]

        monkeypatch.setattr(egress, "resolve", resolve)

    def fetcher(self, handler: Any, **overrides: Any) -> ImageFetcher:
        def record(request: httpx.Request) -> httpx.Response:
            self.seen.append(request)
            return handler(request)  # type: ignore[no-any-return]

        return ImageFetcher(settings(**overrides), transport=httpx.MockTransport(record))


def fetch(fetcher: ImageFetcher, url: str) -> bytes:
    async def run() -> bytes:
        try:
            return await fetcher.fetch(url, LOC)
        finally:
            await fetcher.close()

    return asyncio.run(run())


def refusal(fetcher: ImageFetcher, url: str) -> InputImageError:
    with pytest.raises(InputImageError) as caught:
        fetch(fetcher, url)
    return caught.value


def test_public_url_is_fetched_from_the_checked_address(monkeypatch: pytest.MonkeyPatch) -> None:
    web = Web(monkeypatch, {"img.example": ["93.184.216.34"]})
    data = fetch(web.fetcher(lambda r: httpx.Response(200, content=png())), "https://img.example/a.png")
    assert data == png()
    [request] = web.seen
    assert request.url.host == "93.184.216.34" and request.headers["host"] == "img.example"
    assert request.extensions["sni_hostname"] == "img.example"


@pytest.mark.parametrize("url", ["http://127.0.0.1/x.png", "http://inside.example/x.png", "http://[::1]/x"])
def test_private_hosts_are_refused_when_not_allowed(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    web = Web(
        monkeypatch,
        {"inside.example": ["93.184.216.34", "10.0.0.7"], "127.0.0.1": ["127.0.0.1"], "::1": ["::1"]},
    )
    error = refusal(web.fetcher(lambda r: httpx.Response(200, content=png())), url)
    assert error.kind == "url_refused" and "private" in error.message
    assert web.seen == []


def test_private_hosts_are_fetched_when_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    web = Web(monkeypatch, {})
    fetcher = web.fetcher(lambda r: httpx.Response(200, content=png()), allow_private_urls=True)
    assert fetch(fetcher, "http://127.0.0.1:9/x.png") == png()
    assert web.seen[0].url.host == "127.0.0.1"


def test_the_webhook_allow_list_does_not_open_input_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    """FLEET_WEBHOOK_ALLOW is for webhook targets only: an input URL on an allowed network is refused."""
    web = Web(monkeypatch, {"hooks.cluster": ["10.20.1.5"]})
    fetcher = web.fetcher(
        lambda r: httpx.Response(200, content=png()), webhook_allow="10.20.0.0/16,hooks.cluster"
    )
    error = refusal(fetcher, "http://hooks.cluster/a.png")
    assert error.kind == "url_refused" and web.seen == []


def test_a_redirect_to_a_private_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    web = Web(monkeypatch, {"public.example": ["93.184.216.34"], "metadata.example": ["169.254.169.254"]})

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "http://metadata.example/latest/meta-data"})

    error = refusal(web.fetcher(handler), "http://public.example/a.png")
    assert error.kind == "url_refused" and len(web.seen) == 1


def test_redirects_are_followed_up_to_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    web = Web(monkeypatch, {"a.example": ["93.184.216.34"]})

    def handler(request: httpx.Request) -> httpx.Response:
        hop = int(request.url.path.strip("/") or 0)
        if hop < 2:
            return httpx.Response(302, headers={"Location": f"/{hop + 1}"})
        return httpx.Response(200, content=png())

    assert fetch(web.fetcher(handler), "http://a.example/0") == png()
    error = refusal(web.fetcher(handler, url_max_redirects=1), "http://a.example/0")
    assert "redirects" in error.message


def test_oversize_and_failing_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    web = Web(monkeypatch, {"a.example": ["93.184.216.34"]})
    big = web.fetcher(lambda r: httpx.Response(200, content=b"x" * 5000), max_input_bytes=1000)
    assert refusal(big, "http://a.example/big").kind == "image_too_large"
    declared = web.fetcher(
        lambda r: httpx.Response(200, headers={"Content-Length": "99999999"}, content=b"x"),
        max_input_bytes=1000,
    )
    assert refusal(declared, "http://a.example/big").kind == "image_too_large"
    assert "404" in refusal(web.fetcher(lambda r: httpx.Response(404)), "http://a.example/x").message
    assert (
        refusal(web.fetcher(lambda r: httpx.Response(200)), "http://nowhere.example/").kind
        == "url_unreachable"
    )
    assert refusal(web.fetcher(lambda r: httpx.Response(200)), "ftp://a.example/x").kind == "url_refused"

    def broken(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("slow")

    assert refusal(web.fetcher(broken), "http://a.example/x").kind == "url_unreachable"


def test_image_set_skips_empty_optional_images_and_requires_the_rest() -> None:
    images = ImageSet()
    assert images.add("input_mask", "", ("body", "input_mask")) is None
    assert images.add("input_mask", None, ("body", "input_mask")) is None
    assert images.add("input_mask", b"", ("body", "input_mask")) is None
    with pytest.raises(InvalidRequest) as caught:
        images.add("input_image", "  ", LOC, required=True)
    assert caught.value.detail[0]["loc"] == list(LOC)


def test_image_prompt_defaults_and_limit() -> None:
    images = ImageSet()
    slots = [
        ("a", "ImagePrompt", 0, 0, ("s", 0)),
        (None, "CPDS", 0.1, 0.1, ("s", 1)),  # no image: skipped
        ("b", "FaceSwap", None, 1.2, ("s", 2)),
        ("c", "PyraCanny", 0.3, None, ("s", 3)),
        ("d", None, None, None, ("s", 4)),
        ("e", "CPDS", 0.2, 0.2, ("s", 5)),  # a fifth image: dropped
    ]
    prompts = images.add_prompts(slots)
    assert [(p.cn_type, p.cn_stop, p.cn_weight) for p in prompts] == [
        (ControlNetType.IMAGE_PROMPT, 0.5, 0.6),
        (ControlNetType.FACE_SWAP, 0.9, 1.2),
        (ControlNetType.PYRA_CANNY, 0.3, 1.0),
        (ControlNetType.IMAGE_PROMPT, 0.5, 0.6),
    ]
    assert [p.loc for p in images.pending] == [("s", 0), ("s", 2), ("s", 3), ("s", 4)]


def test_load_reports_the_first_bad_image_by_its_field() -> None:
    images = ImageSet()
    images.add("input_image", base64.b64encode(png()).decode(), LOC)
    images.add("input_mask", base64.b64encode(b"junk").decode(), ("body", "input_mask"))

    async def run() -> None:
        fetcher = ImageFetcher(settings())
        try:
            await images.load(fetcher, settings())
        finally:
            await fetcher.close()

    with pytest.raises(InvalidRequest) as caught:
        asyncio.run(run())
    assert caught.value.detail[0]["loc"] == ["body", "input_mask"]


def test_with_keys_swaps_placeholders_for_storage_keys() -> None:
    placeholder = ImageInputs(
        input_image_key="input_image",
        enhance_input_key="enhance_input",
        image_prompts=[ImagePrompt(image_key="image_prompt_0", cn_stop=0.5, cn_weight=0.6)],
    )
    keys = {n: f"inputs/j/{n}.png" for n in ("input_image", "enhance_input", "image_prompt_0")}
    stored = with_keys(placeholder, keys)
    assert stored.keys() == [
        "inputs/j/input_image.png",
        "inputs/j/enhance_input.png",
        "inputs/j/image_prompt_0.png",
    ]
    assert stored.input_mask_key is None
