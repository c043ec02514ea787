"""Size limits on request fields, so an oversized or unencodable value is a 422 naming its field.

A job's parameters travel through RabbitMQ into the worker's prompt processing; nothing a person types
comes near these bounds. Image fields are bounded by the image rules instead (`max_input_bytes`, checked
before decoding), and the whole body by `max_request_bytes`. Nested values (`advanced_params`, `loras`,
image-prompt slots) are walked, and the message says where inside the field the value is.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationInfo, field_validator

MAX_TEXT_CHARS = 10_000
MAX_LIST_ITEMS = 300  # style_selections may name every style (279)
MAX_SLOTS = 16  # image_prompts and enhance_ctrlnets: 4 and 3 are used, a few more are tolerated
SLOT_FIELDS = frozenset({"image_prompts", "enhance_ctrlnets"})
IMAGE_FIELDS = frozenset({"input_image", "input_mask", "enhance_input_image", "cn_img", "image"})
MAX_DEPTH = 8


def check_value(value: Any, field: str) -> None:
    """Raise `ValueError` when `value` (the input of `field`) is too large or not encodable text."""
    _walk(value, MAX_SLOTS if field in SLOT_FIELDS else MAX_LIST_ITEMS, "", 0)


def _walk(value: Any, max_items: int, where: str, depth: int) -> None:
    at = f" (at {where.lstrip('.')})" if where else ""
    if depth > MAX_DEPTH:
        raise ValueError(f"nested more than {MAX_DEPTH} levels deep{at}")
    if isinstance(value, str):
        if len(value) > MAX_TEXT_CHARS:
            raise ValueError(f"text is longer than {MAX_TEXT_CHARS} characters{at}")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"text is not valid Unicode (a lone surrogate){at}") from None
    elif isinstance(value, list | tuple):
        if len(value) > max_items:
            raise ValueError(f"has more than {max_items} items{at}")
        for i, item in enumerate(value):
            _walk(item, MAX_LIST_ITEMS, f"{where}[{i}]", depth + 1)
    elif isinstance(value, dict):
        if len(value) > MAX_LIST_ITEMS:
            raise ValueError(f"has more than {MAX_LIST_ITEMS} keys{at}")
        for key, item in value.items():
            _walk(key, MAX_LIST_ITEMS, where, depth + 1)
            if key not in IMAGE_FIELDS:
                _walk(item, MAX_LIST_ITEMS, f"{where}.{key}", depth + 1)


class BoundedFields(BaseModel):
    """Mixin: every field but the image ones passes `check_value` before it is validated."""

    @field_validator("*", mode="before")
    @classmethod
    def _bounded(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name not in IMAGE_FIELDS:
            check_value(value, info.field_name or "")
        return value
