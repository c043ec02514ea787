"""Folding the log in batches: a rolling upgrade's newer events are read for what this edge knows, events
of unknown types are skipped and counted, and nothing stops the fold."""

from __future__ import annotations

import asyncio
import json

from contracts import FleetEvent, WorkerStarted
from edge.readmodel.batches import LogFolder
from tests.contracts.test_events import newer_job_queued
from tests.edge.readmodel.events import failed
from tests.edge.support import sqlite_model


def test_a_newer_producers_events_fold_for_what_this_edge_knows() -> None:
    model = sqlite_model()
    after: list[tuple[int, list[FleetEvent]]] = []

    async def committed(position: int, others: list[FleetEvent]) -> None:
        after.append((position, others))

    folder = LogFolder(model, committed)
    unknown = {**json.loads(WorkerStarted(worker_id="w").model_dump_json()), "type": "worker.moved"}
    bodies = [
        json.dumps(newer_job_queued()).encode(),
        json.dumps(unknown).encode(),
        b"not json",
        failed("j").model_dump_json().encode(),
        WorkerStarted(worker_id="w").model_dump_json().encode(),
    ]

    async def scenario() -> None:
        for offset, body in enumerate(bodies):
            folder.add(offset, body)
        assert await folder.flush()

    asyncio.run(scenario())
    view = asyncio.run(model.get("j"))
    assert view is not None and view.finished and view.seeds == (3, 4)
    assert (folder.unknown, folder.skipped) == (1, 1)
    [(position, others)] = after
    assert position == 4 and [type(e) for e in others] == [WorkerStarted]
    assert asyncio.run(model.position()) == 4


def test_credit_returns_as_a_batch_is_taken_before_it_is_committed() -> None:
    """The broker sends the next batch while this one folds: `taken` runs before the commit."""
    model = sqlite_model()
    calls: list[str] = []

    async def committed(position: int, others: list[FleetEvent]) -> None:
        calls.append(f"committed {position}")

    async def taken() -> None:
        calls.append(f"taken at position {await model.position()}")

    folder = LogFolder(model, committed, taken=taken)

    async def scenario() -> None:
        for offset in range(3):
            folder.add(offset, failed(f"j{offset}").model_dump_json().encode())
        assert await folder.flush()
        assert await folder.flush()  # nothing buffered: nothing taken

    asyncio.run(scenario())
    assert calls == ["taken at position -1", "committed 2"]
