"""Reading a dead-lettered job: whose it was, and why it died."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from contracts.topology import DELIVERY_LIMIT


def job_id_of(body: bytes, message_id: str | None) -> str | None:
    """The job id from the body when it parses, else the AMQP message id the edge set."""
    try:
        decoded = json.loads(body)
    except ValueError:
        decoded = None
    if isinstance(decoded, dict) and isinstance(decoded.get("job_id"), str) and decoded["job_id"]:
        return decoded["job_id"]
    return message_id or None


def dead_letter_reason(headers: Mapping[str, Any]) -> tuple[str, str]:
    """(code, message) from RabbitMQ's dead-letter headers."""
    reason = headers.get("x-first-death-reason")
    if isinstance(reason, bytes):
        reason = reason.decode()
    if reason == "delivery_limit":
        return "delivery_limit", f"the job was delivered {DELIVERY_LIMIT + 1} times and never finished"
    return "invalid_job", "the job message could not be read as a valid job"
