"""Every event round-trips through JSON and is recognised by its `type`."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from contracts import (
    SCHEMA_VERSION,
    GenerationParams,
    JobCancelRequested,
    JobFailed,
    JobQueued,
    JobType,
    WebhookAttempted,
    WorkerHeartbeat,
    job_seq,
    parse_event,
    read_event,
    read_message,
)
from contracts.base import FINAL_ATTEMPT


def test_job_queued_round_trips_with_its_envelope() -> None:
    event = JobQueued(
        job_id="j", seq=0, job_type=JobType.TEXT_TO_IMAGE, params=GenerationParams(image_seed=3)
    )
    decoded = parse_event(event.model_dump_json())
    assert decoded == event
    assert decoded.schema_version == SCHEMA_VERSION and decoded.occurred_at.tzinfo is not None


def test_fleet_events_parse_by_type() -> None:
    beat = WorkerHeartbeat(worker_id="w", busy_job="j", models=["m.safetensors"])
    assert parse_event(beat.model_dump_json()) == beat


def test_unknown_type_and_extra_fields_are_refused() -> None:
    with pytest.raises(ValidationError):
        parse_event(b'{"type": "job.exploded", "job_id": "j", "seq": 1}')
    body = JobFailed(job_id="j", seq=1, code="c", message="m").model_dump()
    with pytest.raises(ValidationError):
        JobFailed.model_validate({**body, "surprise": True})


def test_later_attempts_always_sort_after_earlier_ones() -> None:
    assert job_seq(1, 999_999) < job_seq(2, 1) < job_seq(FINAL_ATTEMPT, 1)


def test_a_heartbeat_announces_the_preset_and_one_without_it_still_parses() -> None:
    beat = WorkerHeartbeat(worker_id="w", models=["m.safetensors"], loras=["l.safetensors"], preset="anime")
    assert parse_event(beat.model_dump_json()) == beat
    older = beat.model_dump(mode="json", exclude={"preset"})
    parsed = parse_event(json.dumps(older))
    assert isinstance(parsed, WorkerHeartbeat) and parsed.preset is None


def test_a_job_queued_of_an_older_edge_still_parses() -> None:
    """The idempotency fields are optional: events logged before them replay unchanged."""
    event = JobQueued(job_id="j", seq=0, job_type=JobType.TEXT_TO_IMAGE, params=GenerationParams())
    old = event.model_dump(mode="json", exclude={"idempotency_key", "request_digest"})
    decoded = parse_event(json.dumps(old))
    assert isinstance(decoded, JobQueued)
    assert (decoded.idempotency_key, decoded.request_digest) == (None, None)


def test_cancel_requests_and_webhook_attempts_parse_by_type() -> None:
    cancel = JobCancelRequested(job_id="j", seq=0)
    attempt = WebhookAttempted(
        job_id="j",
        webhook_id="w",
        target="https://hooks.example/x",
        attempt=2,
        attempted_at=datetime(2026, 1, 1, tzinfo=UTC),
        duration_ms=15,
        status_code=503,
        error="HTTP 503",
        outcome="retrying",
        next_attempt_at=datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC),
    )
    assert parse_event(cancel.model_dump_json()) == cancel and cancel.reason == "cancelled"
    assert parse_event(attempt.model_dump_json()) == attempt
    with pytest.raises(ValidationError):
        WebhookAttempted.model_validate({**attempt.model_dump(), "outcome": "maybe"})


def newer_job_queued() -> dict[str, object]:
    """A `JobQueued` as a later version of the edge might write it: a field added at the top, one in
    the params and one in a nested model."""
    event = JobQueued(
        job_id="j",
        seq=0,
        job_type=JobType.TEXT_TO_IMAGE,
        params=GenerationParams(image_seed=3, image_number=2),
    )
    body = json.loads(event.model_dump_json())
    body["priority"] = "high"
    body["params"]["guidance_rescale"] = 0.7
    body["params"]["advanced_params"]["new_sampler_option"] = True
    return body


def test_an_older_reader_reads_what_it_knows_of_a_newer_message() -> None:
    body = json.dumps(newer_job_queued())
    with pytest.raises(ValidationError):
        parse_event(body)  # a producer's own output stays strict
    read = read_event(body)
    assert isinstance(read, JobQueued) and read.job_id == "j"
    assert read.params.seeds() == [3, 4]
    assert read_message(JobQueued, body).params.image_number == 2


def test_an_event_of_an_unknown_type_is_none_to_skip_and_a_malformed_one_still_raises() -> None:
    newer = {**json.loads(WorkerHeartbeat(worker_id="w").model_dump_json()), "type": "worker.throttled"}
    assert read_event(json.dumps(newer)) is None
    with pytest.raises(ValidationError):
        read_event(json.dumps({"type": "job.failed", "job_id": "j", "seq": "not a number"}))
    with pytest.raises(ValidationError):
        read_event(b"{}")  # no type at all: malformed, not newer
