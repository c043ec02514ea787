"""Snapshots of a SQLite read model, against real SQLite files and the real S3 server: a new read model
starts from the latest one at its position, an existing one is left alone, and the snapshots follow the
fold."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from devservices.s3 import WeedServer
from edge.readmodel import ReadModel, snapshots
from storage import ObjectStore, StorageSettings, read_model_key
from tests.edge.readmodel.conftest import LOG
from tests.edge.readmodel.events import finished_job

pytestmark = pytest.mark.integration


@pytest.fixture
async def store(s3_server: WeedServer) -> AsyncIterator[ObjectStore]:
    settings = StorageSettings(
        endpoint=s3_server.endpoint,
        access_key="any",
        secret_key="any",
        bucket=f"snap-{uuid.uuid4().hex[:12]}",
    )
    opened = ObjectStore(settings)
    await opened.ensure_bucket()
    yield opened
    opened.close()


def sqlite(path: Path) -> str:
    return f"sqlite:///{path}"


async def fold_finished(url: str, reader: str, job_ids: list[str], position: int) -> None:
    model = await ReadModel.open(url, LOG, reader)
    try:
        await model.fold([event for job_id in job_ids for event in finished_job(job_id)], position)
    finally:
        await model.close()


async def test_a_new_read_model_starts_from_the_latest_snapshot_at_its_position(
    store: ObjectStore, tmp_path: Path
) -> None:
    first, new = sqlite(tmp_path / "first.db"), sqlite(tmp_path / "new" / "read-model.db")
    await fold_finished(first, "edge-a", ["a", "b", "c"], position=8)
    await snapshots.take(store, first, LOG)
    assert not (tmp_path / "first.db.snapshot").exists()

    assert await snapshots.seed(store, new, LOG, end_at(100))
    model = await ReadModel.open(new, LOG, "edge-b")
    try:
        assert await model.position() == 8  # edge-b's fold resumes after the snapshot's position
        view = await model.get("b")
        assert view is not None and view.finished and view.images[0].key.endswith("b-0.png")
        assert (await model.counts()).finished == 3
        await model.fold(finished_job("d"), 11)
        assert await model.position() == 11
    finally:
        await model.close()
    first_model = await ReadModel.open(first, LOG, "edge-a")
    try:
        assert await first_model.get("d") is None  # the copy is the new edge's own
    finally:
        await first_model.close()


async def test_a_snapshot_past_the_logs_end_is_not_used(store: ObjectStore, tmp_path: Path) -> None:
    """A snapshot of a log deleted and declared again (a new broker) starts counting from 0 again."""
    old, new = sqlite(tmp_path / "old.db"), sqlite(tmp_path / "new.db")
    await fold_finished(old, "edge-a", ["a"], position=41)
    await snapshots.take(store, old, LOG)

    assert not await snapshots.seed(store, new, LOG, end_at(40))
    assert not (tmp_path / "new.db").exists() and not (tmp_path / "new.db.seed").exists()
    assert await snapshots.seed(store, new, LOG, end_at(41))


async def test_seeding_leaves_an_existing_read_model_alone_and_needs_a_snapshot(
    store: ObjectStore, tmp_path: Path
) -> None:
    snapshotted, existing = sqlite(tmp_path / "snapshotted.db"), sqlite(tmp_path / "existing.db")
    await fold_finished(snapshotted, "edge-a", ["a"], position=2)
    await snapshots.take(store, snapshotted, LOG)
    await fold_finished(existing, "edge-b", ["mine"], position=5)

    assert not await snapshots.seed(store, existing, LOG, end_at(100))
    model = await ReadModel.open(existing, LOG, "edge-b")
    try:
        assert await model.get("a") is None and await model.get("mine") is not None
        assert await model.position() == 5
    finally:
        await model.close()

    assert not await snapshots.seed(store, sqlite(tmp_path / "other.db"), "another.log", end_at(100))
    assert not (tmp_path / "other.db").exists()
    assert not await snapshots.seed(store, "postgresql://postgres@127.0.0.1/any", LOG, end_at(100))
    with pytest.raises(ValueError, match="SQLite"):
        await snapshots.take(store, "postgresql://postgres@127.0.0.1/any", LOG)


async def test_snapshots_are_taken_as_the_fold_moves_and_not_while_it_stands_still(
    store: ObjectStore, tmp_path: Path
) -> None:
    url = sqlite(tmp_path / "edge.db")
    await fold_finished(url, "edge-a", ["a"], position=2)
    position = 2
    taking = asyncio.create_task(snapshots.keep_taking(store, url, LOG, lambda: position, every_s=0.05))
    try:
        await wait_for_object(store, read_model_key(LOG))
        await store.delete(read_model_key(LOG))
        await asyncio.sleep(0.3)
        assert not await store.exists(read_model_key(LOG))  # nothing new folded: no new upload

        await fold_finished(url, "edge-a", ["b"], position=5)
        position = 5
        await wait_for_object(store, read_model_key(LOG))
    finally:
        taking.cancel()
    seeded = sqlite(tmp_path / "seeded.db")
    assert await snapshots.seed(store, seeded, LOG, end_at(5))
    model = await ReadModel.open(seeded, LOG, "edge-b")
    try:
        assert await model.position() == 5 and await model.get("b") is not None
    finally:
        await model.close()


def end_at(offset: int) -> Callable[[], Awaitable[int]]:
    """A log whose last offset is `offset`."""

    async def end() -> int:
        return offset

    return end


async def wait_for_object(store: ObjectStore, key: str) -> None:
    for _ in range(200):
        if await store.exists(key):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no object at {key}")
