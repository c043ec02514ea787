"""The read model on a real SQLite file and a real PostgreSQL database: reads, paging, trimming,
deletes, idempotency keys, webhook attempts and waiting for a job's end."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from contracts import (
    ImageInputs,
    JobCancelled,
    JobDeleted,
    JobProgressed,
    JobStarted,
    WebhookAttempted,
    job_seq,
)
from edge.readmodel import ReadModel, Stage
from tests.edge.readmodel.conftest import LOG
from tests.edge.readmodel.events import failed, queued

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def attempt(job_id: str, n: int, outcome: str, seconds: float) -> WebhookAttempted:
    return WebhookAttempted(
        job_id=job_id,
        webhook_id="hook-1",
        target="https://hooks.example/x",
        attempt=n,
        attempted_at=T0 + timedelta(seconds=seconds),
        duration_ms=3,
        status_code=500 if outcome != "delivered" else 200,
        outcome=outcome,  # type: ignore[arg-type]
    )


async def finish_jobs(model: ReadModel, count: int) -> None:
    for n in range(count):
        await model.fold([queued(f"j{n}", at=n), failed(f"j{n}", at=n)])


async def test_history_pages_newest_first_and_the_queue_in_order(model: ReadModel) -> None:
    await finish_jobs(model, 5)
    await model.apply(queued("waiting", at=10))
    first = await model.page(0, 2)
    assert [v.job_id for v in first.history] == ["j4", "j3"]
    assert [v.job_id for v in first.queue] == ["waiting"]
    assert [v.job_id for v in (await model.page(2, 2)).history] == ["j0"]
    assert [v.job_id for v in (await model.page(0, 20, job_id="j3")).history] == ["j3"]
    counts = await model.counts()
    assert (counts.running, counts.finished, counts.last_job_id) == (1, 5, "waiting")
    assert await model.unfinished_count() == 1


async def test_history_limit_keeps_the_newest_finished_jobs(database: str) -> None:
    model = await ReadModel.open(database, LOG, "edge-a", history_limit=3)
    try:
        await finish_jobs(model, 5)
        assert await model.get("j0") is None and await model.get("j1") is None
        assert (await model.counts()).finished == 3
        assert [v.job_id for v in (await model.page(0, 20)).history] == ["j4", "j3", "j2"]
    finally:
        await model.close()


async def test_history_days_drops_jobs_that_finished_longer_ago(database: str) -> None:
    model = await ReadModel.open(database, LOG, "edge-a", history_days=1)
    try:
        old = datetime.now(UTC) - timedelta(days=3)
        await model.fold([queued("old", at=0), failed("old", at=0).model_copy(update={"occurred_at": old})])
        await model.fold([queued("new", at=1), failed("new", at=1)])
        await asyncio.sleep(0)
        assert await model.get("old") is None and await model.get("new") is not None
        assert (await model.counts()).finished == 1
    finally:
        await model.close()


async def test_a_deleted_job_leaves_every_read_and_ignores_later_events(model: ReadModel) -> None:
    await finish_jobs(model, 4)
    await model.apply(JobDeleted(job_id="j2", seq=0))
    await model.fold([failed("j2"), queued("j2")])  # republished after the deletion
    assert await model.get("j2") is None
    assert (await model.counts()).finished == 3
    assert [v.job_id for v in (await model.page(0, 2)).history] == ["j3", "j1"]
    assert (await model.page(0, 20, job_id="j2")).history == []
    await model.apply(JobDeleted(job_id="zzz", seq=0))  # an unknown job: nothing else changes
    assert (await model.counts()).finished == 3


async def test_a_queued_view_remembers_its_input_keys(model: ReadModel) -> None:
    inputs = ImageInputs(input_image_key="inputs/k/input_image.png")
    await model.apply(queued("k").model_copy(update={"inputs": inputs}))
    view = await model.get("k")
    assert view is not None and view.input_keys == ("inputs/k/input_image.png",)


async def test_the_first_job_logged_with_a_key_owns_it_until_the_job_is_gone(model: ReadModel) -> None:
    await model.fold([queued("a", key="k1", digest="d1", at=0), queued("b", key="k1", digest="d2", at=1)])
    owner = await model.by_key("k1")
    assert owner is not None and (owner.job_id, owner.request_digest) == ("a", "d1")
    assert await model.by_key("nope") is None
    await model.apply(JobDeleted(job_id="a", seq=0))
    assert (await model.by_key("k1")).job_id == "b"  # type: ignore[union-attr]


async def test_webhook_attempts_form_the_delivery_log_in_order_without_repeats(model: ReadModel) -> None:
    await model.fold([queued("j"), JobCancelled(job_id="j", seq=job_seq(1, 1), reason="stopped")])
    await model.fold(
        [
            attempt("j", 2, "delivered", 30),
            attempt("j", 1, "retrying", 0),
            attempt("j", 2, "delivered", 31),  # the same attempt again (a redelivered message)
            attempt("unknown", 1, "failed", 0),
        ]
    )
    view = await model.get("j")
    assert view is not None
    assert [(a.attempt, a.outcome, a.attempted_at) for a in view.webhooks] == [
        (1, "retrying", T0),
        (2, "delivered", T0 + timedelta(seconds=31)),
    ]
    assert await model.get("unknown") is None


async def test_live_progress_shows_while_running_and_its_preview_goes_with_the_end(model: ReadModel) -> None:
    await model.fold([queued("r"), JobStarted(job_id="r", seq=job_seq(1, 1), worker_id="w", attempt=1)])
    model.live.step(JobProgressed(job_id="r", seq=job_seq(1, 2), progress=40, status="Step 4", preview="png"))
    running = await model.get("r")
    assert running is not None and (running.stage, running.progress, running.preview) == (
        Stage.RUNNING,
        40,
        "png",
    )
    assert (await model.page(0, 1)).queue[0].progress == 40
    await model.fold([failed("r")])
    ended = await model.get("r")
    assert ended is not None and ended.finished and ended.preview is None and len(model.live) == 0


async def test_waiting_returns_when_the_terminal_event_arrives_or_times_out(model: ReadModel) -> None:
    await model.apply(queued("a"))
    waiter = asyncio.create_task(model.wait_finished("a", timeout=5))
    await asyncio.sleep(0.05)
    await model.fold([failed("a")], position=7)
    done = await asyncio.wait_for(waiter, 2)
    assert done is not None and done.finished and done.stage is Stage.ERROR
    assert await model.wait_finished("never", timeout=0.05) is None


async def test_an_end_another_edge_folded_first_still_wakes_waiters_and_drops_live_progress(
    database: str,
) -> None:
    """Edges sharing one database: this edge's fold of a terminal event another edge already folded
    changes no row, yet its sync callers must wake (not wait out their timeout) and its progress go."""
    this = await ReadModel.open(database, LOG, "edge-a")
    other = await ReadModel.open(database, LOG, "edge-b")
    try:
        running = [queued("s"), JobStarted(job_id="s", seq=job_seq(1, 1), worker_id="w", attempt=1)]
        await this.fold(running)
        this.live.step(
            JobProgressed(job_id="s", seq=job_seq(1, 2), progress=50, status="Step 5", preview="p")
        )
        waiter = asyncio.create_task(this.wait_finished("s", timeout=30))
        await other.fold([*running, failed("s")])
        await asyncio.sleep(0.05)
        assert not waiter.done()  # another edge's fold wakes only that edge's waiters

        assert await this.fold([failed("s")]) == {}  # the row was final already
        done = await asyncio.wait_for(waiter, 2)
        assert done is not None and done.stage is Stage.ERROR and len(this.live) == 0
    finally:
        await this.close()
        await other.close()


async def test_a_crash_before_the_commit_refolds_the_batch_with_no_double_effect(
    model: ReadModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = [
        queued("c"),
        JobStarted(job_id="c", seq=job_seq(1, 1), worker_id="w", attempt=1),
        failed("c"),
        attempt("c", 1, "delivered", 0),
    ]

    async def crash(*_: object) -> None:
        raise ConnectionError("the edge died inside the transaction")

    with monkeypatch.context() as patched:
        patched.setattr(model, "_trim", crash)  # the last step before the tracking row and the commit
        with pytest.raises(ConnectionError):
            await model.fold(batch, position=10)
    assert await model.get("c") is None and await model.position() == -1
    await model.fold(batch, position=10)  # the log delivers the batch again after the restart
    await model.fold(batch, position=10)  # and a second edge (or a reconnection) folds it once more
    view = await model.get("c")
    assert view is not None and view.finished and len(view.webhooks) == 1
    assert (await model.counts()).finished == 1 and await model.position() == 10


async def test_trimmed_history_frees_its_keys(database: str) -> None:
    model = await ReadModel.open(database, LOG, "edge-a", history_limit=1)
    try:
        for n, (job_id, key) in enumerate((("a", "k1"), ("b", "k2"))):
            await model.fold([queued(job_id, key=key, digest="d", at=n), failed(job_id, at=n)])
        assert await model.by_key("k1") is None
        assert (await model.by_key("k2")).job_id == "b"  # type: ignore[union-attr]
    finally:
        await model.close()
