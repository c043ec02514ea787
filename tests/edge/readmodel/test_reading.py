"""The fold's reading of the log: `job.queued` read as what the read model keeps folds to the same view
as the whole event; every other event reads as `contracts.read_event` reads it."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from contracts import (
    AdvancedParams,
    EdgeStarted,
    GenerationParams,
    ImageInputs,
    JobCancelRequested,
    JobDeleted,
    JobQueued,
    JobType,
    WorkerHeartbeat,
    read_event,
)
from contracts.inputs import ImagePrompt
from edge.readmodel.reading import QueuedFacts, read_logged
from edge.readmodel.views import JobView, apply
from tests.edge.readmodel.events import failed, finished_job

QUEUED = [
    finished_job("plain")[0],
    JobQueued(
        job_id="inputs",
        seq=0,
        job_type=JobType.IMAGE_PROMPT,
        params=GenerationParams(
            image_seed=2**63 - 2, image_number=3, advanced_params=AdvancedParams(disable_seed_increment=False)
        ),
        inputs=ImageInputs(
            input_image_key="inputs/j/input_image.png",
            input_mask_key="inputs/j/input_mask.png",
            enhance_input_key="inputs/j/enhance.png",
            image_prompts=[
                ImagePrompt(image_key="inputs/j/prompt-0.png", cn_stop=0.5, cn_weight=1.0),
                ImagePrompt(image_key="inputs/j/prompt-1.png", cn_stop=0.4, cn_weight=0.6),
            ],
        ),
        require_base64=True,
        webhook_url="https://hooks.example/done",
        idempotency_key="k" * 64,
        request_digest="d" * 64,
    ),
    JobQueued(
        job_id="same-seed",
        seq=0,
        job_type=JobType.TEXT_TO_IMAGE,
        params=GenerationParams(
            image_seed=7, image_number=2, advanced_params=AdvancedParams(disable_seed_increment=True)
        ),
    ),
]


@pytest.mark.parametrize("event", QUEUED, ids=lambda e: e.job_id)
def test_a_queued_job_read_as_its_facts_folds_to_the_same_view(event: JobQueued) -> None:
    read = read_logged(event.model_dump_json())
    assert isinstance(read, QueuedFacts)
    view = JobView(job_id=event.job_id)
    assert apply(view, read) == apply(view, event)
    assert (
        apply(view, read).seeds == tuple(event.params.seeds()) and read.inputs.keys() == event.inputs.keys()
    )


def test_every_other_event_reads_as_the_contracts_read_it() -> None:
    others = [
        *finished_job("j")[1:],
        failed("j"),
        JobCancelRequested(job_id="j", seq=0),
        JobDeleted(job_id="j", seq=0),
        WorkerHeartbeat(worker_id="w"),
        EdgeStarted(edge_id="e"),
    ]
    for event in others:
        body = event.model_dump_json()
        assert read_logged(body) == read_event(body) == event


def test_the_reading_is_tolerant_as_the_contracts_are() -> None:
    newer = json.loads(QUEUED[1].model_dump_json())
    newer["priority"] = "high"
    newer["params"]["guidance_rescale"] = 0.7
    newer["inputs"]["image_prompts"][0]["new_field"] = 1
    read = read_logged(json.dumps(newer))
    assert isinstance(read, QueuedFacts) and read.params.seeds() == QUEUED[1].params.seeds()
    assert read_logged(json.dumps({**newer, "type": "job.rescheduled"})) is None
    with pytest.raises(ValidationError):
        read_logged(json.dumps({**newer, "seq": "not a number"}))
