"""The object key scheme: where inputs, outputs and manifests live. Pure functions, no I/O.

Layout::

    inputs/{job_id}/{name}          images a request uploaded
    outputs/{YYYY-MM-DD}/{name}     generated images, served by GET /files/{date}/{name}
    manifests/{job_id}.json         a finished job's result manifest
    read-models/{log}.sqlite        the latest snapshot of an edge's SQLite read model of that log
"""

from __future__ import annotations

import re
from datetime import date
from typing import Final
from uuid import UUID

INPUTS_PREFIX: Final = "inputs/"
OUTPUTS_PREFIX: Final = "outputs/"
MANIFESTS_PREFIX: Final = "manifests/"
CANCELS_PREFIX: Final = "cancels/"
CLAIMS_PREFIX: Final = "claims/"
READ_MODELS_PREFIX: Final = "read-models/"

#: File extensions that may be served from ``outputs/``, with their content types.
IMAGE_CONTENT_TYPES: Final[dict[str, str]] = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
}

MAX_SEGMENT_LENGTH: Final = 255

# ASCII only: ``\d`` and ``\w`` would also match non-ASCII digits and letters.
_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _segment(value: str, what: str) -> str:
    """Return ``value`` if it is one safe path segment, else raise ``ValueError`` naming ``what``."""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, got {type(value).__name__}")
    if len(value) > MAX_SEGMENT_LENGTH or _SEGMENT.fullmatch(value) is None:
        raise ValueError(
            f"{what} {value!r} is not a safe path segment "
            "([A-Za-z0-9._-], not starting with a dot, at most 255 characters)"
        )
    return value


def _image_name(name: str) -> str:
    """Return ``name`` if it is a safe segment with a servable image extension."""
    _segment(name, "file name")
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or ext not in IMAGE_CONTENT_TYPES:
        allowed = ", ".join(IMAGE_CONTENT_TYPES)
        raise ValueError(f"file name {name!r} must end in one of: {allowed}")
    return name


def _day(day: date) -> str:
    # strftime, not isoformat: a datetime is a date too, and its isoformat carries the time.
    return day.strftime("%Y-%m-%d")


def input_key(job_id: str | UUID, name: str) -> str:
    """Key of an input image a job uploaded: ``inputs/{job_id}/{name}``."""
    return f"{INPUTS_PREFIX}{_segment(str(job_id), 'job_id')}/{_segment(name, 'input name')}"


def output_key(day: date, name: str) -> str:
    """Key of a generated image: ``outputs/{YYYY-MM-DD}/{name}``; ``name`` must pass ``file_key``."""
    return f"{OUTPUTS_PREFIX}{_day(day)}/{_image_name(name)}"


def manifest_key(job_id: str | UUID) -> str:
    """Key of a job's result manifest: ``manifests/{job_id}.json``."""
    return f"{MANIFESTS_PREFIX}{_segment(str(job_id), 'job_id')}.json"


def cancel_key(job_id: str | UUID) -> str:
    """Key of a job's cancel marker: ``cancels/{job_id}``, its body the reason. Written by the edge before
    the cancel is logged, read by the worker that dequeues the job, removed once the job ended."""
    return f"{CANCELS_PREFIX}{_segment(str(job_id), 'job_id')}"


def claim_key(job_id: str | UUID) -> str:
    """Key of the claim on a job: ``claims/{job_id}``, which worker runs it, for which attempt, until when."""
    return f"{CLAIMS_PREFIX}{_segment(str(job_id), 'job_id')}"


def read_model_key(log: str) -> str:
    """Key of the latest snapshot of a SQLite read model of the log named ``log``:
    ``read-models/{log}.sqlite``. A new edge seeds its read model from it instead of folding the whole log."""
    return f"{READ_MODELS_PREFIX}{_segment(log, 'log')}.sqlite"


def file_key(date_str: str, file_name: str) -> str:
    """Validate the parts of a ``GET /files/{date}/{name}`` request and return the output key they name.

    Args:
        date_str: the ``{date}`` path part, exactly ``YYYY-MM-DD`` and a real calendar day.
        file_name: the ``{name}`` path part (already URL-decoded): one segment of ``[A-Za-z0-9._-]``,
            not starting with a dot, ending in ``.png``, ``.jpg``, ``.jpeg`` or ``.webp``.

    Raises:
        ValueError: on anything else, so ``..``, ``%2e%2e``, slashes, backslashes and NUL never reach
            the store.
    """
    if not isinstance(date_str, str) or _DATE.fullmatch(date_str) is None:
        raise ValueError(f"date {date_str!r} must be YYYY-MM-DD")
    try:
        day = date.fromisoformat(date_str)
    except ValueError:
        raise ValueError(f"date {date_str!r} is not a calendar day") from None
    return output_key(day, file_name)


def content_type_for(name: str) -> str:
    """Content type of an image by its extension; ``application/octet-stream`` when unknown."""
    _, dot, ext = name.rpartition(".")
    return IMAGE_CONTENT_TYPES.get(ext, "application/octet-stream") if dot else "application/octet-stream"
