"""Facts, in the past tense. Job lifecycle events go to the durable log; progress and heartbeats
travel on the live exchange, where losing one is harmless."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from contracts.base import JobMessage, Message
from contracts.inputs import ImageInputs
from contracts.params import GenerationParams


class JobType(StrEnum):
    """Fooocus-API's `job_type` values."""

    TEXT_TO_IMAGE = "Text to Image"
    UPSCALE_VARY = "Image Upscale or Variation"
    INPAINT_OUTPAINT = "Image Inpaint or Outpaint"
    IMAGE_PROMPT = "Image Prompt"
    ENHANCE = "Image Enhancement"


class OutputImage(BaseModel):
    """One generated image, stored under `key` in object storage."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(description="Object key, `outputs/{YYYY-MM-DD}/{name}-{i}.{ext}`.")
    seed: int = Field(ge=0, description="The seed this image was made with.")


class JobQueued(JobMessage):
    """The edge accepted a job. Routed both to the log and to the work queue in one publish."""

    type: Literal["job.queued"] = "job.queued"
    job_type: JobType
    params: GenerationParams
    inputs: ImageInputs = Field(default_factory=ImageInputs, description="Stored input images, by key.")
    require_base64: bool = False
    webhook_url: str | None = None
    idempotency_key: str | None = Field(
        None, description="SHA-256 of the client's `Idempotency-Key` scoped to its API key (never the key)."
    )
    request_digest: str | None = Field(
        None, description="SHA-256 of the request as sent, to tell a repeat from a reuse of the key."
    )


class JobCancelRequested(JobMessage):
    """Someone asked to cancel the job. Every worker reads these: the one running the job stops it at
    the next step, and whichever dequeues it later ends it as cancelled without running it."""

    type: Literal["job.cancel_requested"] = "job.cancel_requested"
    reason: str = Field("cancelled", examples=["cancelled"])


class JobStarted(JobMessage):
    """A worker began (or, after a crash, began again) to run the job."""

    type: Literal["job.started"] = "job.started"
    worker_id: str
    attempt: int = Field(ge=1)


class JobProgressed(JobMessage):
    """A step finished. Throttled, and sent on the live exchange only."""

    type: Literal["job.progressed"] = "job.progressed"
    progress: int = Field(ge=0, le=100)
    status: str = Field(examples=["Step 3/30 in the 1-th Sampling"])
    preview: str | None = Field(None, description="Small base64 PNG of the current latent.")


class JobSucceeded(JobMessage):
    """Every image is stored. The one terminal event of a successful job."""

    type: Literal["job.succeeded"] = "job.succeeded"
    images: list[OutputImage]
    worker_id: str
    run_ms: int = Field(ge=0)


class JobFailed(JobMessage):
    """The job cannot finish. `code` is for machines, `message` for people."""

    type: Literal["job.failed"] = "job.failed"
    code: str = Field(examples=["invalid_job", "engine_error", "delivery_limit"])
    message: str


class JobCancelled(JobMessage):
    """The job was stopped; images finished before the stop are kept."""

    type: Literal["job.cancelled"] = "job.cancelled"
    reason: str = Field(examples=["stopped"])
    images: list[OutputImage] = Field(default_factory=list)


class JobDeleted(JobMessage):
    """`job-history?delete=true`: the job leaves every projection and its files are removed."""

    type: Literal["job.deleted"] = "job.deleted"


class WebhookAttempted(Message):
    """One attempt to deliver a finished job's webhook: the job's delivery log, read from the log."""

    type: Literal["webhook.attempted"] = "webhook.attempted"
    job_id: str
    webhook_id: str = Field(description="The `webhook-id` header: stable across the retries of one delivery.")
    target: str
    attempt: int = Field(ge=1)
    attempted_at: datetime
    duration_ms: int = Field(ge=0)
    status_code: int | None = Field(None, description="The receiver's HTTP status; None when none came.")
    error: str | None = Field(None, examples=["timeout", "ConnectError", "HTTP 500"])
    outcome: Literal["delivered", "retrying", "failed"]
    next_attempt_at: datetime | None = Field(None, description="When the next attempt is due (retrying).")


class WorkerStarted(Message):
    """A worker is ready to take jobs."""

    type: Literal["worker.started"] = "worker.started"
    worker_id: str
    models: list[str] = Field(default_factory=list)


class WorkerStopped(Message):
    """A worker left the fleet on purpose."""

    type: Literal["worker.stopped"] = "worker.stopped"
    worker_id: str


class WorkerHeartbeat(Message):
    """Periodic worker status on the live exchange."""

    type: Literal["worker.heartbeat"] = "worker.heartbeat"
    worker_id: str
    busy_job: str | None = None
    models: list[str] = Field(default_factory=list)
    warm: list[str] = Field(
        default_factory=list, description="The checkpoints loaded now: jobs for them come here first."
    )
    loras: list[str] = Field(default_factory=list)
    preset: str | None = Field(None, description="The worker's model preset (its request defaults).")
    device: str | None = Field(
        None, description="What the worker runs its models on: cpu, mps or the GPU's name."
    )
    dtype: str | None = Field(None, description="The models' precision: float32, float16 or bfloat16.")
    vram: str | None = Field(None, description="Its VRAM mode: normal, low or very_low (`FLEET_VRAM`).")


class EdgeStarted(Message):
    """An edge announces itself on the log; reading its own marker back means it has caught up."""

    type: Literal["edge.started"] = "edge.started"
    edge_id: str


TERMINAL_EVENTS = (JobSucceeded, JobFailed, JobCancelled)
JobEvent = (
    JobQueued
    | JobStarted
    | JobProgressed
    | JobSucceeded
    | JobFailed
    | JobCancelled
    | JobDeleted
    | JobCancelRequested
)
FleetEvent = WorkerStarted | WorkerStopped | WorkerHeartbeat | EdgeStarted | WebhookAttempted
AnyEvent = Annotated[JobEvent | FleetEvent, Field(discriminator="type")]
EVENT_ADAPTER: TypeAdapter[JobEvent | FleetEvent] = TypeAdapter(AnyEvent)
MessageT = TypeVar("MessageT", bound=BaseModel)
EventT = TypeVar("EventT")


def parse_event(body: bytes | str) -> JobEvent | FleetEvent:
    """Decode any event by its `type`, strictly (what a producer builds); raises `ValidationError`."""
    return EVENT_ADAPTER.validate_json(body)


def read_event(body: bytes | str) -> JobEvent | FleetEvent | None:
    """A consumer's reading of any event, tolerant for rolling upgrades: fields this version does not
    know are ignored (a newer producer added them), and an event of a type it does not know is None,
    for the caller to skip and count. A malformed event of a known type still raises `ValidationError`."""
    return read_tolerantly(EVENT_ADAPTER, body)


def read_tolerantly(adapter: TypeAdapter[EventT], body: bytes | str) -> EventT | None:
    """`read_event` through another union of events discriminated by `type` (a consumer's own reading
    of some of them): unknown fields ignored, an unknown type None."""
    try:
        return adapter.validate_json(body, extra="ignore")
    except ValidationError as error:
        if any(e["type"] == "union_tag_invalid" and not e["loc"] for e in error.errors()):
            return None
        raise


def read_message(model: type[MessageT], body: bytes | str) -> MessageT:
    """A consumer's reading of one kind of message (a job, a command): unknown fields are ignored."""
    return model.model_validate_json(body, extra="ignore")
