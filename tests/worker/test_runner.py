"""JobRunner with a fake engine and an in-memory store: the reliability rules of one job."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest
from PIL import Image

from contracts import GenerationParams, JobQueued, JobType, parse_event
from storage import ObjectNotFound, keys
from worker.engine.sdxl import GeneratedImage, StepInfo
from worker.interrupts import InterruptSwitch
from worker.runner import JobRunner


class MemoryStore:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    async def get(self, key: str) -> bytes:
        if key not in self.objects:
            raise ObjectNotFound(key=key)
        return self.objects[key]

    async def put(self, key: str, data: bytes, content_type: str = "") -> str:
        self.objects[key] = data
        return "etag"


class CountingEngine:
    """Yields grey images, calling `on_step` for each of `steps` steps."""

    def __init__(self, steps: int = 3, fail_at: int | None = None) -> None:
        self.steps, self.fail_at, self.runs = steps, fail_at, 0

    def text_to_image(
        self, params: GenerationParams, seeds: list[int], on_step: Callable[[StepInfo], None]
    ) -> Iterator[GeneratedImage]:
        self.runs += 1
        for index, seed in enumerate(seeds):
            for step in range(1, self.steps + 1):
                if self.fail_at == step:
                    raise RuntimeError("the engine broke")
                on_step(StepInfo(index, len(seeds), step, self.steps, lambda: b"png"))
            yield GeneratedImage(index, seed, Image.new("RGB", (8, 8), (seed % 255, 0, 0)))


def job(number: int = 2) -> JobQueued:
    params = GenerationParams(image_seed=11, image_number=number, save_meta=False)
    return JobQueued(job_id="job-1", seq=0, job_type=JobType.TEXT_TO_IMAGE, params=params)


def runner(engine: CountingEngine, store: MemoryStore, published: list, live: list) -> JobRunner:
    async def to_log(event: object) -> None:
        published.append(event)

    async def to_live(event: object) -> None:
        live.append(event)

    return JobRunner("w1", engine, store, to_log, to_live, InterruptSwitch(), progress_interval_s=0)  # type: ignore[arg-type]


def test_success_stores_images_and_a_manifest_before_the_terminal_event() -> None:
    store, published, live = MemoryStore(), [], []
    terminal = asyncio.run(runner(CountingEngine(), store, published, live).run(job(), attempt=1))
    assert [e.type for e in published] == ["job.started", "job.succeeded"]
    assert [i.seed for i in terminal.images] == [11, 12]
    assert all(i.key in store.objects for i in terminal.images)
    assert parse_event(store.objects[keys.manifest_key("job-1")]) == terminal
    assert [e.progress for e in live] == sorted(e.progress for e in live) and len(live) == 6


def test_a_redelivered_finished_job_is_not_run_again() -> None:
    store, published, live = MemoryStore(), [], []
    engine = CountingEngine()
    first = asyncio.run(runner(engine, store, published, live).run(job(), attempt=1))
    again = asyncio.run(runner(engine, store, published, live).run(job(), attempt=2))
    assert engine.runs == 1
    assert again.event_id == first.event_id and published[-1] == first


def test_an_engine_error_ends_the_job_as_failed_with_the_reason() -> None:
    store, published, live = MemoryStore(), [], []
    terminal = asyncio.run(runner(CountingEngine(fail_at=2), store, published, live).run(job(), attempt=1))
    assert (terminal.type, terminal.code, terminal.message) == (
        "job.failed",
        "engine_error",
        "the engine broke",
    )


def test_a_stop_keeps_the_images_already_made() -> None:
    store, published, live = MemoryStore(), [], []
    switch = InterruptSwitch()
    engine = CountingEngine()
    run = runner(engine, store, published, live)
    run.interrupts = switch
    original = engine.text_to_image

    def stop_in_second_image(params, seeds, on_step):  # type: ignore[no-untyped-def]
        def stepping(info: StepInfo) -> None:
            if info.image_index == 1:
                switch.trip("stopped")
            on_step(info)

        return original(params, seeds, stepping)

    engine.text_to_image = stop_in_second_image  # type: ignore[method-assign]
    terminal = asyncio.run(run.run(job(), attempt=1))
    assert terminal.type == "job.cancelled" and [i.seed for i in terminal.images] == [11]


@pytest.mark.parametrize("code", ["delivery_limit", "invalid_job"])
def test_a_dead_letter_fails_the_job_unless_it_finished(code: str) -> None:
    store, published, live = MemoryStore(), [], []
    failed = asyncio.run(runner(CountingEngine(), store, published, live).fail("job-9", code, "why"))
    assert (failed.type, failed.code) == ("job.failed", code)
    finished = asyncio.run(runner(CountingEngine(), store, published, live).run(job(), attempt=1))
    replay = asyncio.run(runner(CountingEngine(), store, published, live).fail("job-1", code, "why"))
    assert replay == finished
