"""A job view as a database row and back. Times are epoch milliseconds, lists JSON."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from contracts import JobType, OutputImage, WebhookAttempted
from edge.readmodel.views import JobView, Stage


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def _time(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def to_row(view: JobView, deleted: bool = False) -> dict[str, Any]:
    """Every column of the job's row. The live preview is not one: it stays in memory."""
    return {
        "job_id": view.job_id,
        "job_type": view.job_type.value if view.job_type else None,
        "stage": view.stage.value,
        "progress": view.progress,
        "status": view.status,
        "images": [image.model_dump() for image in view.images],
        "seeds": list(view.seeds),
        "require_base64": view.require_base64,
        "webhook_url": view.webhook_url,
        "queued_ms": _ms(view.queued_at),
        "started_ms": _ms(view.started_at),
        "finished_ms": _ms(view.finished_at),
        "outcome": view.outcome,
        "error_code": view.error_code,
        "error_message": view.error_message,
        "input_keys": list(view.input_keys),
        "cancel_requested": view.cancel_requested,
        "idempotency_key": view.idempotency_key,
        "request_digest": view.request_digest,
        "webhooks": [attempt.model_dump(mode="json") for attempt in view.webhooks],
        "last_seq": view.last_seq,
        "deleted": deleted,
    }


def from_row(row: Mapping[str, Any]) -> JobView:
    return JobView(
        job_id=row["job_id"],
        job_type=JobType(row["job_type"]) if row["job_type"] else None,
        stage=Stage(row["stage"]),
        progress=row["progress"],
        status=row["status"],
        images=tuple(OutputImage.model_validate(image) for image in row["images"]),
        seeds=tuple(row["seeds"]),
        require_base64=row["require_base64"],
        webhook_url=row["webhook_url"],
        queued_at=_time(row["queued_ms"]),
        started_at=_time(row["started_ms"]),
        finished_at=_time(row["finished_ms"]),
        outcome=row["outcome"],
        error_code=row["error_code"],
        error_message=row["error_message"],
        input_keys=tuple(row["input_keys"]),
        cancel_requested=row["cancel_requested"],
        idempotency_key=row["idempotency_key"],
        request_digest=row["request_digest"],
        webhooks=tuple(WebhookAttempted.model_validate(attempt) for attempt in row["webhooks"]),
        last_seq=row["last_seq"],
    )
