"""Encoding generated images in the requested format, with the job's parameters as metadata."""

from __future__ import annotations

import io
import json

from PIL import Image, PngImagePlugin

# save_extension → (PIL format, file extension, content type). `jpg` is accepted as `jpeg`
# (Fooocus-API crashes on it with base64; we do not).
FORMATS: dict[str, tuple[str, str, str]] = {
    "png": ("PNG", "png", "image/png"),
    "jpeg": ("JPEG", "jpeg", "image/jpeg"),
    "jpg": ("JPEG", "jpg", "image/jpeg"),
    "webp": ("WEBP", "webp", "image/webp"),
}
EXIF_USER_COMMENT = 0x9286


def encode(image: Image.Image, extension: str, metadata: dict[str, object] | None) -> tuple[bytes, str, str]:
    """Return (bytes, file extension, content type); metadata is embedded when given."""
    pil_format, file_ext, content_type = FORMATS.get(extension.lower(), FORMATS["png"])
    buffer = io.BytesIO()
    options: dict[str, object] = {}
    if metadata is not None:
        text = json.dumps(metadata, ensure_ascii=False)
        if pil_format == "PNG":
            info = PngImagePlugin.PngInfo()
            info.add_text("parameters", text)
            info.add_text("fooocus_scheme", str(metadata.get("metadata_scheme", "fooocus")))
            options["pnginfo"] = info
        else:
            exif = Image.Exif()
            exif[EXIF_USER_COMMENT] = text
            options["exif"] = exif
    image.convert("RGB").save(buffer, format=pil_format, **options)
    return buffer.getvalue(), file_ext, content_type
