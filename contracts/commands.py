"""Orders, in the imperative. They travel on the control exchange to every worker."""

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
