"""The fleet's messages: the one source of truth for every command and event shape.

Imports pydantic (and FastStream's schema objects in `topology`) only, never another package of ours.
"""

from contracts.base import SCHEMA_VERSION, JobMessage, Message, job_seq
from contracts.commands import CancelJob, ControlCommand, StopRunning
from contracts.events import (
    TERMINAL_EVENTS,
    AnyEvent,
    EdgeStarted,
    FleetEvent,
    JobCancelled,
    JobEvent,
    JobFailed,
    JobProgressed,
    JobQueued,
    JobStarted,
    JobSucceeded,
    JobType,
    OutputImage,
    WorkerHeartbeat,
    WorkerStarted,
    WorkerStopped,
    parse_event,
)
from contracts.params import MAX_SEED, AdvancedParams, GenerationParams, Lora, Performance

__all__ = [
    "MAX_SEED",
    "SCHEMA_VERSION",
    "TERMINAL_EVENTS",
    "AdvancedParams",
    "AnyEvent",
    "CancelJob",
    "ControlCommand",
    "EdgeStarted",
    "FleetEvent",
    "GenerationParams",
    "JobCancelled",
    "JobEvent",
    "JobFailed",
    "JobMessage",
    "JobProgressed",
    "JobQueued",
    "JobStarted",
    "JobSucceeded",
    "JobType",
    "Lora",
    "Message",
    "OutputImage",
    "Performance",
    "StopRunning",
    "WorkerHeartbeat",
    "WorkerStarted",
    "WorkerStopped",
    "job_seq",
    "parse_event",
]
