"""Orders, in the imperative. Control commands travel on the control exchange to every worker;
`DeliverWebhook` waits in a delay queue until an edge's next delivery attempt is due."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from contracts.base import Message


class StopRunning(Message):
    """Fooocus-API's global stop: every worker interrupts the job it is running now."""

    type: Literal["stop.running"] = "stop.running"


class CancelJob(Message):
    """Stop one job, queued or running, wherever it is."""

    type: Literal["cancel.job"] = "cancel.job"
    job_id: str = Field(description="The job to cancel.")


class RefreshModels(Message):
    """Every worker rescans its model folders and answers with a heartbeat."""

    type: Literal["refresh.models"] = "refresh.models"


class ReleaseMemory(Message):
    """Every worker unloads its models (Fooocus-API's clean_vram)."""

    type: Literal["release.memory"] = "release.memory"


ControlCommand = StopRunning | CancelJob | RefreshModels | ReleaseMemory


class DeliverWebhook(Message):
    """Try (again) to post a finished job's webhook. Carries the body as first rendered, so every
    attempt sends the same bytes under the same `webhook-id`, whichever edge takes it."""

    type: Literal["webhook.deliver"] = "webhook.deliver"
    job_id: str
    webhook_id: str
    target: str
    body: str = Field(description="The JSON payload, exactly as posted.")
    attempt: int = Field(ge=1, description="The attempt this order makes, from 1.")
    trusted: bool = Field(False, description="The operator's own default URL: no private-address check.")
