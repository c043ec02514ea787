"""Where the edge's log consumer resumes after a reconnection: after the last committed batch, never
past an event that is not in the read model."""

from __future__ import annotations

import asyncio
from typing import Any

from contracts.topology import Topology
from edge.bus import EdgeBus
from tests.edge.readmodel.events import failed, queued
from tests.edge.support import sqlite_model


def Message(offset: int, body: bytes) -> tuple[int, bytes]:
    return offset, body


def fold_log_of(bus: EdgeBus) -> Any:
    async def deliver(message: tuple[int, bytes]) -> None:
        bus.reader.receive(*message)

    return deliver


def test_a_committed_batch_moves_the_resume_offset_and_the_stored_position() -> None:
    model = sqlite_model()
    bus = EdgeBus("amqp://guest:guest@127.0.0.1:1/", Topology("t"), "edge-t", model)
    call = fold_log_of(bus)
    assert bus.log_offset == "first"

    async def scenario() -> None:
        await call(Message(3, queued("a").model_dump_json().encode()))
        await call(Message(4, b"{}"))  # unreadable: skipped and counted, its offset still passed
        assert bus.log_offset == "first"  # buffered, not committed yet
        await bus.folder.flush()

    asyncio.run(scenario())
    assert bus.log_offset == 5 and bus.folder.skipped == 1
    assert asyncio.run(model.position()) == 4
    assert asyncio.run(model.get("a")) is not None


def test_a_batch_the_database_refused_stays_buffered_and_the_offset_stays(monkeypatch: Any) -> None:
    model = sqlite_model()
    bus = EdgeBus("amqp://guest:guest@127.0.0.1:1/", Topology("t"), "edge-t", model)
    call = fold_log_of(bus)
    real_fold = model.fold

    async def refuse(*_: object, **__: object) -> None:
        raise OSError("database away")

    async def scenario() -> None:
        bus.reader.committed(6)
        monkeypatch.setattr(model, "fold", refuse)
        await call(Message(7, queued("b").model_dump_json().encode()))
        await bus.folder.flush()
        assert bus.log_offset == 7 and await model.get("b") is None
        monkeypatch.setattr(model, "fold", real_fold)
        await call(Message(8, failed("b").model_dump_json().encode()))
        await bus.folder.flush()

    asyncio.run(scenario())
    view = asyncio.run(model.get("b"))
    assert view is not None and view.finished and bus.log_offset == 9
