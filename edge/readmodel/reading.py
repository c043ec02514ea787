"""Reading the log for the fold: every event as `contracts` defines it, except `job.queued`, which is read
as only what the read model keeps of it (`QueuedFacts`).

A queued job carries its whole request: some eighty generation parameters and the image inputs, checked
by the edge that accepted it and again by the worker that runs it. Checking them once more for every job
of a long log took a fifth of a new edge's catch-up, for two numbers and a few keys.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from contracts import (
    FleetEvent,
    JobEvent,
    JobMessage,
    JobQueued,
    JobType,
    read_tolerantly,
    seed_series,
    stored_keys,
)


class _Read(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class _SeedSettings(_Read):
    disable_seed_increment: bool = False


class _Seeds(_Read):
    """The parameters a job's seeds come from (`GenerationParams.seeds`)."""

    image_seed: int
    image_number: int = 1
    advanced_params: _SeedSettings = _SeedSettings()

    def seeds(self) -> list[int]:
        return seed_series(self.image_seed, self.image_number, self.advanced_params.disable_seed_increment)


class _PromptImage(_Read):
    image_key: str


class _StoredInputs(_Read):
    """The storage keys of a job's input images (`ImageInputs.keys`)."""

    input_image_key: str | None = None
    input_mask_key: str | None = None
    enhance_input_key: str | None = None
    image_prompts: list[_PromptImage] = Field(default_factory=list)

    def keys(self) -> list[str]:
        return stored_keys(
            [self.input_image_key, self.input_mask_key, self.enhance_input_key],
            [prompt.image_key for prompt in self.image_prompts],
        )


class QueuedFacts(JobMessage):
    """What the read model keeps of `job.queued`: the job's type, seeds, input keys and delivery options."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    type: Literal["job.queued"] = "job.queued"
    job_type: JobType
    params: _Seeds
    inputs: _StoredInputs = Field(default_factory=_StoredInputs)
    require_base64: bool = False
    webhook_url: str | None = None
    idempotency_key: str | None = None
    request_digest: str | None = None


_OTHERS = tuple(kind for kind in get_args(JobEvent | FleetEvent) if kind is not JobQueued)
# Built from the contracts' union, so an event type added there is read here too.
LogEvent = Annotated[Union[(QueuedFacts, *_OTHERS)], Field(discriminator="type")]  # type: ignore[valid-type]
_LOG_EVENTS: TypeAdapter[JobEvent | FleetEvent | QueuedFacts] = TypeAdapter(LogEvent)


def read_logged(body: bytes | str) -> JobEvent | FleetEvent | QueuedFacts | None:
    """One event of the log as the fold reads it; tolerant as `contracts.read_event` is (unknown fields
    ignored, an unknown type None, a malformed event of a known type `ValidationError`)."""
    return read_tolerantly(_LOG_EVENTS, body)
