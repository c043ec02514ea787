"""Input images: from an upload, base64, a `data:` URI or an http(s) URL to a verified PNG in storage.

Every image is read and checked (size cap, decompression-bomb limit, full decode, dimensions) before
anything is stored or queued, so a bad image is a 422 naming its field, never a failed job. URLs are
fetched with timeouts, a size cap and re-checked redirects, under the address rules of `edge.egress`
(private, loopback, link-local and metadata addresses refused unless `allow_private_urls` is on).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from PIL import Image, UnidentifiedImageError

from contracts import CONTROL_DEFAULTS, ControlNetType, ImageInputs, ImagePrompt
from edge import egress
from edge.errors import InvalidRequest
from edge.settings import EdgeSettings
from storage import ObjectStore, input_key

ImageSource = bytes | str
Loc = tuple[str | int, ...]
DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*?);base64,", re.IGNORECASE)
MAX_IMAGE_PROMPTS = 4


class InputImageError(ValueError):
    """An input image cannot be used; `loc` names the request field."""

    def __init__(self, loc: Loc, message: str, kind: str = "image_invalid") -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message
        self.kind = kind

    def to_request_error(self) -> InvalidRequest:
        return InvalidRequest(
            [{"type": self.kind, "loc": list(self.loc), "msg": self.message, "input": None}]
        )


def is_empty(source: ImageSource | None) -> bool:
    return (
        source is None
        or (isinstance(source, bytes) and not source)
        or (isinstance(source, str) and not source.strip())
    )


# ---- decoding ------------------------------------------------------------------------------------------


def decode_base64(text: str, loc: Loc) -> bytes:
    """Plain base64 or a `data:image/...;base64,` URI; whitespace and missing padding are tolerated."""
    text = text.strip()
    match = DATA_URI.match(text)
    if match is not None:
        mime = (match.group("mime") or "").lower()
        if mime and not mime.startswith("image/"):
            raise InputImageError(loc, f"a data URI must hold an image, not {mime}")
        text = text[match.end() :]
    elif text.startswith("data:"):
        raise InputImageError(loc, "a data URI must be `data:image/...;base64,...`")
    compact = re.sub(r"\s+", "", text)
    compact += "=" * (-len(compact) % 4)
    try:
        return base64.b64decode(
            compact, altchars=b"-_" if ("-" in compact or "_" in compact) else None, validate=True
        )
    except (binascii.Error, ValueError):
        raise InputImageError(loc, "not a base64 image, a data:image URI or an http(s) URL") from None


def to_png(raw: bytes, loc: Loc, settings: EdgeSettings) -> bytes:
    """Verify, fully decode and re-encode as PNG; refuse bombs, oversize and unreadable data."""
    if len(raw) > settings.max_input_bytes:
        raise InputImageError(
            loc, f"image is larger than {settings.max_input_bytes} bytes", "image_too_large"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw)) as probe:
                _check_size(probe.size, loc, settings)
                probe.verify()
            with Image.open(io.BytesIO(raw)) as image:
                _check_size(image.size, loc, settings)
                image.load()
                if image.mode not in ("RGB", "RGBA", "L", "LA"):
                    keep_alpha = image.mode in ("P", "PA", "RGBa", "La") or "transparency" in image.info
                    image = image.convert("RGBA" if keep_alpha else "RGB")
                out = io.BytesIO()
                image.save(out, format="PNG")
                return out.getvalue()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputImageError(
            loc, "image has too many pixels (decompression bomb)", "image_too_large"
        ) from None
    except InputImageError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as error:
        raise InputImageError(loc, f"not a readable image: {error}") from None


def _check_size(size: tuple[int, int], loc: Loc, settings: EdgeSettings) -> None:
    width, height = size
    if width * height > settings.max_image_pixels:
        raise InputImageError(loc, "image has too many pixels (decompression bomb)", "image_too_large")
    if max(width, height) > settings.max_image_side:
        raise InputImageError(
            loc,
            f"image is {width}×{height}; at most {settings.max_image_side} pixels a side",
            "image_too_large",
        )
    if width < 1 or height < 1:
        raise InputImageError(loc, "image is empty")


# ---- fetching ------------------------------------------------------------------------------------------


class ImageFetcher:
    """Fetches input URLs under the edge's rules; one HTTP client for the process."""

    def __init__(self, settings: EdgeSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        timeout = httpx.Timeout(settings.url_read_timeout_s, connect=settings.url_connect_timeout_s)
        self.client = httpx.AsyncClient(timeout=timeout, follow_redirects=False, transport=transport)

    async def close(self) -> None:
        await self.client.aclose()

    async def fetch(self, url: str, loc: Loc) -> bytes:
        current = httpx.URL(url)
        for _ in range(self.settings.url_max_redirects + 1):
            response = await self._get(current, loc)
            if response is None:
                continue
            if isinstance(response, httpx.URL):
                current = response
                continue
            return response
        raise InputImageError(loc, f"more than {self.settings.url_max_redirects} redirects", "url_refused")

    async def _get(self, url: httpx.URL, loc: Loc) -> bytes | httpx.URL | None:
        try:
            pinned = await egress.pin(url, self.settings.allow_private_urls)
        except egress.UrlRefused as refused:
            raise InputImageError(loc, refused.message, refused.kind) from None
        cap = self.settings.max_input_bytes
        try:
            request = self.client.build_request(
                "GET", pinned.target, headers=pinned.headers, extensions=pinned.extensions
            )
            response = await self.client.send(request, stream=True)
            try:
                if response.is_redirect:
                    location = response.headers.get("location", "")
                    return url.join(location)
                if response.status_code != 200:
                    raise InputImageError(
                        loc, f"fetching the URL answered HTTP {response.status_code}", "url_unreachable"
                    )
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > cap:
                    raise InputImageError(loc, f"image is larger than {cap} bytes", "image_too_large")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > cap:
                        raise InputImageError(loc, f"image is larger than {cap} bytes", "image_too_large")
                return bytes(body)
            finally:
                await response.aclose()
        except httpx.HTTPError as error:
            raise InputImageError(
                loc, f"cannot fetch the URL: {type(error).__name__}", "url_unreachable"
            ) from None


# ---- one request's images ------------------------------------------------------------------------------


@dataclass
class PendingImage:
    name: str
    loc: Loc
    source: ImageSource


@dataclass
class ImageSet:
    """The images one request brings, named by placeholder until they are stored under real keys."""

    pending: list[PendingImage] = field(default_factory=list)
    loaded: dict[str, bytes] = field(default_factory=dict)

    def add(self, name: str, source: ImageSource | None, loc: Loc, required: bool = False) -> str | None:
        """Register an image; an empty optional one is absent (None), an empty required one a 422."""
        if is_empty(source):
            if required:
                raise InputImageError(loc, "Field required", "missing").to_request_error()
            return None
        assert source is not None
        self.pending.append(PendingImage(name, loc, source))
        return name

    def add_prompts(
        self, slots: Iterable[tuple[ImageSource | None, Any, Any, Any, Loc]]
    ) -> list[ImagePrompt]:
        """Image-prompt slots `(image, cn_type, cn_stop, cn_weight, loc)`; empty slots are skipped, at most
        four are kept, and a missing or 0 stop/weight takes the type's default (as Fooocus-API does)."""
        prompts: list[ImagePrompt] = []
        for image, cn_type, cn_stop, cn_weight, loc in slots:
            if len(prompts) == MAX_IMAGE_PROMPTS:
                break
            name = self.add(f"image_prompt_{len(prompts)}", image, loc)
            if name is None:
                continue
            kind = ControlNetType(cn_type or ControlNetType.IMAGE_PROMPT)
            stop, weight = CONTROL_DEFAULTS[kind]
            prompts.append(
                ImagePrompt(
                    image_key=name, cn_type=kind, cn_stop=cn_stop or stop, cn_weight=cn_weight or weight
                )
            )
        return prompts

    async def load(self, fetcher: ImageFetcher, settings: EdgeSettings) -> None:
        """Decode, fetch and verify every image; the first bad one is a 422 naming its field."""
        for item in self.pending:
            try:
                raw = await _raw(item, fetcher)
                self.loaded[item.name] = await asyncio.to_thread(to_png, raw, item.loc, settings)
            except InputImageError as error:
                raise error.to_request_error() from None

    async def store(self, store: ObjectStore, job_id: str) -> dict[str, str]:
        """Write every loaded image as `inputs/{job_id}/{name}.png`; returns name → key."""
        keys: dict[str, str] = {}
        for name, png in self.loaded.items():
            key = input_key(job_id, f"{name}.png")
            await store.put(key, png, "image/png")
            keys[name] = key
        return keys


async def _raw(item: PendingImage, fetcher: ImageFetcher) -> bytes:
    if isinstance(item.source, bytes):
        return item.source
    text = item.source.strip()
    if re.match(r"^https?://", text, re.IGNORECASE):
        return await fetcher.fetch(text, item.loc)
    return decode_base64(text, item.loc)


def with_keys(inputs: ImageInputs, keys: dict[str, str]) -> ImageInputs:
    """Replace the placeholder names in `inputs` with the storage keys they were written under."""

    def key(name: str | None) -> str | None:
        return keys[name] if name else None

    prompts = [p.model_copy(update={"image_key": keys[p.image_key]}) for p in inputs.image_prompts]
    return inputs.model_copy(
        update={
            "input_image_key": key(inputs.input_image_key),
            "input_mask_key": key(inputs.input_mask_key),
            "enhance_input_key": key(inputs.enhance_input_key),
            "image_prompts": prompts,
        }
    )


def prompt_slots(prompts: Sequence[Any], where: str = "body") -> list[tuple[Any, Any, Any, Any, Loc]]:
    """`image_prompts` of a v2 JSON body as `ImageSet.add_prompts` slots."""
    return [
        (p.cn_img, p.cn_type, p.cn_stop, p.cn_weight, (where, "image_prompts", i, "cn_img"))
        for i, p in enumerate(prompts)
    ]
