"""The images one request brings: registered by placeholder name, loaded and verified, then stored under
`inputs/{job_id}/` and the placeholders in `ImageInputs` replaced by the keys."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from contracts import CONTROL_DEFAULTS, ControlNetType, ImageInputs, ImagePrompt
from edge.inputs.decoding import ImageSource, InputImageError, Loc, decode_base64, is_empty, to_png
from edge.inputs.fetcher import ImageFetcher
from edge.settings import EdgeSettings
from storage import ObjectStore, input_key

MAX_IMAGE_PROMPTS = 4


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
    return decode_base64(text, item.loc, fetcher.settings.max_input_bytes)


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
