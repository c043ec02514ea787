"""Encoding generated images in the requested format, with the job's parameters as metadata.

Where the metadata goes is Fooocus's choice, so its readers find it: PNG text chunks `parameters` (the
text) and `fooocus_scheme` (`fooocus` or `a1111`); for JPEG and WebP, EXIF UserComment (the text),
MakerNote (the scheme) and Software. Quality is Fooocus's too: JPEG 95 optimised and progressive, WebP 95
lossy, PNG lossless.
"""

from __future__ import annotations

import io

from PIL import Image, PngImagePlugin

from worker.engine.metadata import VERSION

# save_extension → (PIL format, file extension, content type). `jpg` is accepted as `jpeg`
# (Fooocus-API crashes on it with base64; we do not).
FORMATS: dict[str, tuple[str, str, str]] = {
    "png": ("PNG", "png", "image/png"),
    "jpeg": ("JPEG", "jpeg", "image/jpeg"),
    "jpg": ("JPEG", "jpg", "image/jpeg"),
    "webp": ("WEBP", "webp", "image/webp"),
}
SAVE_OPTIONS: dict[str, dict[str, object]] = {
    "PNG": {},
    "JPEG": {"quality": 95, "optimize": True, "progressive": True},
    "WEBP": {"quality": 95, "lossless": False},
}
EXIF_SOFTWARE = 0x0131
EXIF_USER_COMMENT = 0x9286
EXIF_MAKER_NOTE = 0x927C


def encode(image: Image.Image, extension: str, metadata: tuple[str, str] | None) -> tuple[bytes, str, str]:
    """Return (bytes, file extension, content type); `metadata` (text, scheme) is embedded when given."""
    pil_format, file_ext, content_type = FORMATS.get(extension.lower(), FORMATS["png"])
    buffer = io.BytesIO()
    options = dict(SAVE_OPTIONS[pil_format])
    if metadata is not None:
        text, scheme = metadata
        if pil_format == "PNG":
            info = PngImagePlugin.PngInfo()
            info.add_text("parameters", text)
            info.add_text("fooocus_scheme", scheme)
            options["pnginfo"] = info
        else:
            exif = Image.Exif()
            exif[EXIF_USER_COMMENT] = text.encode()  # UTF-8 bytes: a str tag would be ASCII-only
            exif[EXIF_SOFTWARE] = VERSION
            exif[EXIF_MAKER_NOTE] = scheme
            options["exif"] = exif
    image.convert("RGB").save(buffer, format=pil_format, **options)
    return buffer.getvalue(), file_ext, content_type


def read_metadata(data: bytes) -> tuple[str | None, str | None]:
    """(text, scheme) embedded by `encode`, read back as Fooocus reads it; (None, None) when absent."""
    with Image.open(io.BytesIO(data)) as image:
        info = dict(image.info or {})
        if "parameters" in info:
            return str(info["parameters"]), info.get("fooocus_scheme")
        exif = image.getexif()
    text, scheme = exif.get(EXIF_USER_COMMENT), exif.get(EXIF_MAKER_NOTE)
    return (_exif_text(text), _exif_text(scheme)) if text is not None else (None, None)


def _exif_text(value: object) -> str | None:
    if value is None:
        return None
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
