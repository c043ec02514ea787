"""Answers to tool requests (describe an image, generate a mask), sent back to the request's reply-to."""

from __future__ import annotations

import asyncio
import io
import logging
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError
from pydantic import TypeAdapter

from contracts import DescribeImage, GenerateMask, ToolRequest, ToolResult
from storage import ObjectNotFound, ObjectStore
from worker.engine.describe import Describer, DescribeUnavailableError
from worker.engine.folders import MissingModelError, ModelFolders
from worker.engine.masks import MaskUnavailableError, generate_mask

log = logging.getLogger(__name__)

TOOL_REQUEST: TypeAdapter[ToolRequest] = TypeAdapter(ToolRequest)
# What a caller can fix or must be told; anything else is a bug and is logged with its traceback.
EXPECTED_ERRORS = (MissingModelError, MaskUnavailableError, DescribeUnavailableError, ValueError)


@dataclass
class ToolRunner:
    store: ObjectStore
    folders: ModelFolders
    describer: Describer

    async def answer(self, body: bytes) -> ToolResult:
        """The reply to one request body; every failure becomes `ToolResult(error=...)`."""
        try:
            request = TOOL_REQUEST.validate_json(body, extra="ignore")
        except ValueError as error:
            return ToolResult(error=f"not a tool request: {error}")
        try:
            image = await self._image(request.image_key)
            if isinstance(request, DescribeImage):
                text = await asyncio.to_thread(self.describer.describe, image, request.image_type.value)
                return ToolResult(text=text)
            return await self._mask(request, image)
        except EXPECTED_ERRORS as error:
            return ToolResult(error=str(error))
        except Exception as error:  # the caller waits for an answer: never leave it without one
            log.exception("tool request %s failed", request.type)
            return ToolResult(error=f"{type(error).__name__}: {error}")

    async def _image(self, key: str) -> Image.Image:
        try:
            data = await self.store.get(key)
        except ObjectNotFound:
            raise ValueError(f"image `{key}` is not in storage") from None
        try:
            image = Image.open(io.BytesIO(data))
            image.load()
        except (UnidentifiedImageError, OSError) as error:
            raise ValueError(f"`{key}` is not a readable image: {error}") from None
        return image

    async def _mask(self, request: GenerateMask, image: Image.Image) -> ToolResult:
        mask = await asyncio.to_thread(generate_mask, self.folders, image, request)
        buffer = io.BytesIO()
        mask.save(buffer, format="PNG")  # grey levels kept, as rembg's `only_mask` answer
        await self.store.put(request.mask_key, buffer.getvalue(), "image/png")
        return ToolResult(mask_key=request.mask_key)
