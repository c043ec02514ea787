"""Reading one input image: base64 and `data:` URIs to bytes, bytes to a verified PNG (size cap,
decompression-bomb limit, known format, full decode, dimensions), and the error that names its field."""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings

from PIL import Image, UnidentifiedImageError

from edge.errors import InvalidRequest
from edge.settings import EdgeSettings

ImageSource = bytes | str
Loc = tuple[str | int, ...]
DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*?);base64,", re.IGNORECASE)
# Formats Pillow may open: the common raster ones. Others (EPS runs Ghostscript, and the rarer plugins
# are a larger attack surface) are refused as unreadable.
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")


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


def decode_base64(text: str, loc: Loc, max_bytes: int | None = None) -> bytes:
    """Plain base64 or a `data:image/...;base64,` URI; whitespace and missing padding are tolerated.
    Text that would decode to more than `max_bytes` is refused before it is decoded."""
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
    if max_bytes is not None and len(compact) // 4 * 3 > max_bytes + 2:
        raise InputImageError(loc, f"image is larger than {max_bytes} bytes", "image_too_large")
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
            with Image.open(io.BytesIO(raw), formats=IMAGE_FORMATS) as probe:
                _check_size(probe.size, loc, settings)
                probe.verify()
            with Image.open(io.BytesIO(raw), formats=IMAGE_FORMATS) as image:
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
