"""Given events, then the view: the pure fold behind every read endpoint."""

from __future__ import annotations

from contracts import (
    GenerationParams,
    JobCancelled,
    JobCancelRequested,
    JobFailed,
    JobProgressed,
    JobQueued,
    JobStarted,
    JobSucceeded,
    JobType,
    OutputImage,
    job_seq,
)
from edge.readmodel.views import JobView, Stage, apply

JOB = "job-1"


def queued() -> JobQueued:
    return JobQueued(
        job_id=JOB,
        seq=0,
        job_type=JobType.TEXT_TO_IMAGE,
        params=GenerationParams(image_seed=7, image_number=2),
        webhook_url="http://hook",
    )


def started(attempt: int = 1) -> JobStarted:
    return JobStarted(job_id=JOB, seq=job_seq(attempt, 1), worker_id="w", attempt=attempt)


def progressed(attempt: int, n: int, progress: int) -> JobProgressed:
    return JobProgressed(job_id=JOB, seq=job_seq(attempt, n), progress=progress, status=f"step {n}")


def succeeded(attempt: int = 1) -> JobSucceeded:
    images = [OutputImage(key="outputs/2026-11-26/a-0.png", seed=7)]
    return JobSucceeded(job_id=JOB, seq=job_seq(attempt, 9), images=images, worker_id="w", run_ms=5)


def fold(*events: object) -> JobView:
    view = JobView(job_id=JOB)
    for event in events:
        view = apply(view, event)  # type: ignore[arg-type]
    return view


def test_queued_job_waits_with_its_seeds_and_webhook() -> None:
    view = fold(queued())
    assert (view.stage, view.seeds, view.webhook_url) == (Stage.WAITING, (7, 8), "http://hook")
    assert view.job_type is JobType.TEXT_TO_IMAGE


def test_started_job_is_running_and_progress_rises() -> None:
    view = fold(queued(), started(), progressed(1, 2, 40))
    assert (view.stage, view.progress, view.status) == (Stage.RUNNING, 40, "step 2")


def test_success_is_final_and_keeps_images() -> None:
    view = fold(queued(), started(), succeeded(), progressed(1, 10, 50), started(2))
    assert view.stage is Stage.SUCCESS and view.progress == 100
    assert [i.key for i in view.images] == ["outputs/2026-11-26/a-0.png"]


def test_stale_and_repeated_events_change_nothing() -> None:
    view = fold(queued(), started(), progressed(1, 5, 60))
    assert apply(view, progressed(1, 3, 30)) is view
    assert apply(view, progressed(1, 5, 60)) is view


def test_a_redelivery_restarts_progress_after_the_first_attempt() -> None:
    view = fold(queued(), started(1), progressed(1, 8, 90), started(2))
    assert (view.stage, view.progress, view.status) == (Stage.RUNNING, 0, "Started")


def test_progress_before_the_queued_event_does_not_hide_it() -> None:
    view = fold(progressed(1, 2, 30), queued())
    assert view.job_type is JobType.TEXT_TO_IMAGE and view.seeds == (7, 8)


def test_failure_says_why() -> None:
    failed = JobFailed(job_id=JOB, seq=job_seq(999, 1), code="delivery_limit", message="gave up")
    view = fold(queued(), started(), failed)
    assert (view.stage, view.error_code, view.status) == (Stage.ERROR, "delivery_limit", "Failed: gave up")


def test_a_stopped_job_is_a_success_with_the_images_made_so_far_as_in_fooocus_api_0_5() -> None:
    bare = JobCancelled(job_id=JOB, seq=job_seq(1, 5), reason="stopped")
    kept = JobCancelled(
        job_id=JOB, seq=job_seq(1, 5), reason="stopped", images=[OutputImage(key="k.png", seed=7)]
    )
    running = apply(
        fold(queued(), started()), JobProgressed(job_id=JOB, seq=job_seq(1, 2), progress=40, status="Step 4")
    )
    without = apply(running, bare)
    assert without.stage is Stage.SUCCESS and without.images == () and without.progress == 40
    assert without.status == "Cancelled: stopped" and without.outcome == "job.cancelled"
    assert fold(queued(), started(), kept).stage is Stage.SUCCESS
    assert fold(queued(), started(), kept).images == (OutputImage(key="k.png", seed=7),)


def test_worker_events_that_overtake_the_queued_event_keep_their_stage() -> None:
    view = fold(started(), succeeded(), queued())
    assert view.stage is Stage.SUCCESS and view.webhook_url == "http://hook" and view.seeds == (7, 8)
    assert view.queued_at is not None and apply(view, queued()) is view


def test_a_cancel_request_marks_the_job_whatever_its_seq_and_not_after_it_ended() -> None:
    view = apply(JobView(job_id=JOB), queued())
    view = apply(view, JobStarted(job_id=JOB, seq=job_seq(1, 1), worker_id="w", attempt=1))
    asked = apply(view, JobCancelRequested(job_id=JOB, seq=0))  # seq 0 is below the worker's
    assert asked.cancel_requested and asked.stage is Stage.RUNNING
    ended = apply(asked, JobCancelled(job_id=JOB, seq=job_seq(1, 2), reason="cancelled"))
    assert ended.finished and ended.status == "Cancelled: cancelled" and ended.stage is Stage.SUCCESS
    stopped = apply(view, JobCancelled(job_id=JOB, seq=job_seq(1, 2), reason="stopped"))
    assert not apply(stopped, JobCancelRequested(job_id=JOB, seq=0)).cancel_requested
