"""A job's files in object storage: its input images read and decoded, and each generated image encoded
(`save_extension`, `save_meta` metadata) and written under Fooocus-API's name."""

from __future__ import annotations

import asyncio
import io
from typing import TYPE_CHECKING

from PIL import Image, UnidentifiedImageError

from contracts import JobQueued, OutputImage
from storage import ObjectNotFound, ObjectStore, keys
from worker.engine.jobs import JobImages
from worker.engine.metadata import RecordedImage, RunRecord, metadata_text
from worker.outputs import encode

if TYPE_CHECKING:
    from contracts import GenerationParams
    from worker.engine.runs import GeneratedImage


class MissingInputError(Exception):
    """An input image the job names is not in storage, or is not an image: retrying cannot help."""


async def load_inputs(store: ObjectStore, job: JobQueued) -> JobImages:
    """Every input image of the job, decoded; a missing object fails the job instead of looping."""
    images: dict[str, Image.Image] = {}
    wanted = job.inputs.keys()  # ImageInputs.keys(): the storage keys it names, not a dict
    for key in wanted:
        try:
            data = await store.get(key)
        except ObjectNotFound:
            raise MissingInputError(
                f"input image `{key}` is not in storage (expired or never uploaded)"
            ) from None
        try:
            images[key] = await asyncio.to_thread(_decode_image, data)
        except (UnidentifiedImageError, OSError, ValueError) as error:
            raise MissingInputError(f"input `{key}` is not a readable image: {error}") from None
    return JobImages(job.inputs, images)


async def store_image(store: ObjectStore, job: JobQueued, generated: GeneratedImage) -> OutputImage:
    """Encode one generated image with its metadata and write it under `outputs/{date}/`."""
    params = job.params
    data, extension, content_type = await asyncio.to_thread(_encoded, params, generated)
    # Fooocus-API's name: `{save_name or job_id}-{index}.{ext}` (a repeated save_name overwrites).
    name = f"{params.save_name or job.job_id}-{generated.index}.{extension}"
    key = keys.output_key(job.occurred_at.date(), name)
    await store.put(key, data, content_type)
    return OutputImage(key=key, seed=generated.seed)


def _decode_image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _encoded(params: GenerationParams, generated: GeneratedImage) -> tuple[bytes, str, str]:
    """The stored file: `save_extension`, with `save_meta` metadata of what the run actually used."""
    metadata = None
    if params.save_meta:
        # The engine attaches the effective parameters (preset, performance, LoRAs); a plain engine does not.
        record = generated.record if isinstance(generated, RecordedImage) else None
        metadata = metadata_text(
            record
            or RunRecord(params, base_model=params.base_model_name).for_image(generated, lambda _: None),
            generated.seed,
            generated.sampler_name,
            generated.scheduler_name,
        )
    return encode(generated.image, params.save_extension, metadata)
