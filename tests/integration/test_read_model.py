"""The durable read model with the real log: an edge's bus folds RabbitMQ's stream into a real SQLite
file or PostgreSQL database, a restart resumes from the stored position, and two edges share one
PostgreSQL read model."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from functools import partial
from pathlib import Path

import pytest
from faststream.rabbit import RabbitBroker

from contracts.topology import Topology
from devservices.s3 import WeedServer
from edge.bus import EdgeBus
from edge.logreader import log_end
from edge.readmodel import ReadModel, snapshots
from edge.readmodel.changes import Folded
from messaging import declare, publish_event
from storage import ObjectStore, StorageSettings
from tests.conftest import _delete_namespace
from tests.edge.readmodel.events import finished_job

pytestmark = pytest.mark.integration


@pytest.fixture
async def topology(rabbitmq: str) -> AsyncIterator[Topology]:
    made = Topology(f"test-{uuid.uuid4().hex[:10]}")
    yield made
    await _delete_namespace(rabbitmq, made)


async def publish_jobs(rabbitmq: str, topology: Topology, job_ids: Sequence[str]) -> None:
    """Finished jobs straight into the log, as workers and another edge would have written them."""
    async with RabbitBroker(rabbitmq) as broker:
        await declare(broker, topology)
        for job_id in job_ids:
            for event in finished_job(job_id):
                await publish_event(broker, topology, event)


class Edge:
    """One edge's read side, in this process: its read model and the bus folding the log into it."""

    def __init__(self, rabbitmq: str, topology: Topology, database: str, name: str) -> None:
        self.rabbitmq, self.topology, self.database, self.name = rabbitmq, topology, database, name
        self.folded: list[Folded] = []

    async def __aenter__(self) -> Edge:
        self.model = await ReadModel.open(self.database, self.topology.log.name, self.name)
        fold = self.model.fold

        async def counted(events: Sequence[Folded], position: int | None = None) -> object:
            self.folded.extend(events)
            return await fold(events, position)

        self.model.fold = counted  # type: ignore[method-assign]
        self.bus = EdgeBus(self.rabbitmq, self.topology, self.name, self.model)
        await self.bus.start()
        await asyncio.wait_for(self.model.current.wait(), 60)
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.bus.close()
        await self.model.close()

    async def wait_finished_count(self, count: int) -> None:
        for _ in range(600):
            if (await self.model.counts()).finished >= count:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{self.name} never folded {count} finished jobs")


async def test_a_restart_resumes_from_the_stored_position_and_folds_nothing_again(
    rabbitmq: str, topology: Topology, tmp_path: Path
) -> None:
    database = f"sqlite:///{tmp_path / 'edge.db'}"
    before = [f"before-{n}" for n in range(40)]
    await publish_jobs(rabbitmq, topology, before)
    async with Edge(rabbitmq, topology, database, "edge-1") as first:
        await first.wait_finished_count(40)
        stored = await first.model.position()
    assert stored >= 3 * 40 - 1
    while_down = [f"later-{n}" for n in range(5)]
    await publish_jobs(rabbitmq, topology, while_down)
    async with Edge(rabbitmq, topology, database, "edge-1") as again:
        await again.wait_finished_count(45)
        assert {e.job_id for e in again.folded} == set(while_down)
        view = await again.model.get("before-0")
        assert view is not None and view.finished and view.images[0].key.endswith("before-0-0.png")
        assert await again.model.position() > stored


async def test_a_new_edge_seeded_from_a_snapshot_folds_only_the_log_after_it(
    rabbitmq: str, topology: Topology, tmp_path: Path, s3_server: WeedServer
) -> None:
    store = ObjectStore(
        StorageSettings(
            endpoint=s3_server.endpoint, access_key="any", secret_key="any", bucket=topology.namespace
        )
    )
    await store.ensure_bucket()
    first, new = f"sqlite:///{tmp_path / 'first.db'}", f"sqlite:///{tmp_path / 'new.db'}"
    before = [f"before-{n}" for n in range(40)]
    await publish_jobs(rabbitmq, topology, before)
    async with Edge(rabbitmq, topology, first, "edge-1") as edge:
        await edge.wait_finished_count(40)
        await snapshots.take(store, first, topology.log.name)
    after = [f"after-{n}" for n in range(5)]
    await publish_jobs(rabbitmq, topology, after)

    end = partial(log_end, rabbitmq, topology)
    assert await snapshots.seed(store, new, topology.log.name, end)
    async with Edge(rabbitmq, topology, new, "edge-2") as seeded:
        await seeded.wait_finished_count(45)
        assert {e.job_id for e in seeded.folded} == set(after)  # none of the 40 before the snapshot
        view = await seeded.model.get("before-7")
        assert view is not None and view.finished and view.images[0].key.endswith("before-7-0.png")

    # A new broker: its log, declared again, counts from offset 0, and the snapshot is past its end.
    await _delete_namespace(rabbitmq, topology)
    await publish_jobs(rabbitmq, topology, ["again"])
    assert await end() == 2
    assert not await snapshots.seed(store, f"sqlite:///{tmp_path / 'after-reset.db'}", topology.log.name, end)


async def test_two_edges_on_one_postgres_read_model_see_each_others_jobs(
    rabbitmq: str, topology: Topology, postgres_url: str
) -> None:
    async with (
        Edge(rabbitmq, topology, postgres_url, "edge-a") as a,
        Edge(rabbitmq, topology, postgres_url, "edge-b") as b,
    ):
        queued, started, succeeded = finished_job("shared")
        await a.bus.submit(queued)
        await a.model.apply(queued)  # what the accepting edge does: read its own write at once
        seen = await b.model.get("shared")
        assert seen is not None and not seen.finished
        waiting = asyncio.create_task(b.model.wait_finished("shared", timeout=30))
        async with RabbitBroker(rabbitmq) as worker:
            for event in (started, succeeded):
                await publish_event(worker, topology, event)
        done = await asyncio.wait_for(waiting, 10)  # woken by its own fold, whichever edge folded first
        assert done is not None and done.finished and done.images == tuple(succeeded.images)
        await a.wait_finished_count(1)
        assert (await b.model.counts()).finished == 1  # folded by both, counted once
        position_a, position_b = a.bus.folder.position, b.bus.folder.position
    assert position_a >= 2 and position_b >= 2
