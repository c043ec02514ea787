"""The envelope every message shares: identity, time, schema version, and per-job ordering."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1

# A job's events come from several publishers over several delivery attempts (edge, worker try 1,
# worker try 2, dead-letter handler). `seq = attempt * SEQ_ATTEMPT_STRIDE + n` keeps them ordered
# without a shared counter: a later attempt always sorts after every event of an earlier one.
SEQ_ATTEMPT_STRIDE = 1_000_000
FINAL_ATTEMPT = 999


def job_seq(attempt: int, n: int) -> int:
    """The `seq` of the n-th event that delivery attempt `attempt` publishes for a job."""
    return attempt * SEQ_ATTEMPT_STRIDE + n


class Message(BaseModel):
    """Base of every message: frozen, strict about its own fields, self-identifying."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: UUID = Field(default_factory=uuid4, description="Unique id; consumers drop repeats.")
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    schema_version: int = Field(SCHEMA_VERSION, description="Bumped on a breaking change.")


class JobMessage(Message):
    """A message about one job, ordered within that job by `seq`."""

    job_id: str = Field(description="The job's id (uuid4 text).", examples=["4f1c…"])
    seq: int = Field(ge=0, description="Per-job order; consumers drop `seq <= last seen`.")
