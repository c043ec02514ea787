"""JobRunner with a fake engine and an in-memory store: the reliability rules of one job."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image

from contracts import GenerationParams, ImageInputs, JobQueued, JobType, job_seq, parse_event
from storage import ObjectNotFound, keys
from worker.engine.folders import MissingModelError
from worker.engine.jobs import JobImages
from worker.engine.metadata import RecordedImage, RunRecord
from worker.engine.runs import GeneratedImage, StepInfo
from worker.interrupts import InterruptSwitch
from worker.outputs import read_metadata
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

    async def delete(self, key: str) -> None:
        self.objects.pop(key, None)


class CountingEngine:
    """Yields grey images, calling `on_step` for each of `steps` steps; records what it was asked."""

    def __init__(self, steps: int = 3, fail_at: int | None = None) -> None:
        self.steps, self.fail_at, self.runs = steps, fail_at, 0
        self.calls: list[tuple[JobType, JobImages]] = []
        self.before_step: Callable[[StepInfo], None] = lambda info: None

    def run(
        self,
        job_type: JobType,
        params: GenerationParams,
        inputs: JobImages,
        seeds: list[int],
        on_step: Callable[[StepInfo], None],
    ) -> Iterator[GeneratedImage]:
        self.runs += 1
        self.calls.append((job_type, inputs))
        for index, seed in enumerate(seeds):
            for step in range(1, self.steps + 1):
                if self.fail_at == step:
                    raise RuntimeError("the engine broke")
                info = StepInfo(index, len(seeds), step, self.steps, lambda: b"png")
                self.before_step(info)
                on_step(info)
            yield GeneratedImage(index, seed, Image.new("RGB", (8, 8), (seed % 255, 0, 0)))


def job(
    number: int = 2, job_type: JobType = JobType.TEXT_TO_IMAGE, inputs: ImageInputs | None = None
) -> JobQueued:
    params = GenerationParams(image_seed=11, image_number=number, save_meta=False)
    return JobQueued(job_id="job-1", seq=0, job_type=job_type, params=params, inputs=inputs or ImageInputs())


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


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


@pytest.mark.parametrize(
    ("advanced", "previews"),
    [({}, True), ({"disable_preview": True}, False), ({"black_out_nsfw": True}, False)],
)
def test_previews_are_left_out_when_disabled_or_when_the_nsfw_censor_is_on(
    advanced: dict[str, bool], previews: bool
) -> None:
    store, published, live = MemoryStore(), [], []
    queued = job(number=1)
    params = queued.params.model_copy(
        update={"advanced_params": queued.params.advanced_params.model_copy(update=advanced)}
    )
    queued = queued.model_copy(update={"params": params})
    terminal = asyncio.run(runner(CountingEngine(), store, published, live).run(queued, attempt=1))
    assert terminal.type == "job.succeeded" and len(live) == 3
    assert [e.preview is not None for e in live] == [previews] * 3


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

    def stop_in_second_image(info: StepInfo) -> None:
        if info.image_index == 1:
            switch.trip("stopped")

    engine.before_step = stop_in_second_image
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


@pytest.mark.parametrize(
    ("job_type", "inputs"),
    [
        (JobType.UPSCALE_VARY, ImageInputs(input_image_key="inputs/job-1/a.png", uov_method="Vary (Subtle)")),
        (
            JobType.INPAINT_OUTPAINT,
            ImageInputs(input_image_key="inputs/job-1/a.png", input_mask_key="inputs/job-1/m.png"),
        ),
        (JobType.IMAGE_PROMPT, ImageInputs(input_image_key="inputs/job-1/a.png")),
        (JobType.ENHANCE, ImageInputs(enhance_input_key="inputs/job-1/a.png")),
    ],
)
def test_each_job_kind_reaches_the_engine_with_its_stored_images(
    job_type: JobType, inputs: ImageInputs
) -> None:
    store, published, live = MemoryStore(), [], []
    store.objects["inputs/job-1/a.png"] = png(Image.new("RGB", (16, 8), (9, 9, 9)))
    store.objects["inputs/job-1/m.png"] = png(Image.new("L", (16, 8), 255))
    engine = CountingEngine()
    terminal = asyncio.run(runner(engine, store, published, live).run(job(1, job_type, inputs), attempt=1))
    assert terminal.type == "job.succeeded" and len(terminal.images) == 1
    [(called, given)] = engine.calls
    assert called is job_type and given.spec == inputs
    named = inputs.keys()  # ImageInputs.keys(): the storage keys it names
    assert {key: image.size for key, image in given.images.items()} == dict.fromkeys(named, (16, 8))


def test_a_missing_input_image_fails_the_job_without_running_it() -> None:
    store, published, live = MemoryStore(), [], []
    engine = CountingEngine()
    inputs = ImageInputs(input_image_key="inputs/job-1/gone.png", uov_method="Vary (Subtle)")
    terminal = asyncio.run(
        runner(engine, store, published, live).run(job(1, JobType.UPSCALE_VARY, inputs), 1)
    )
    assert (terminal.type, terminal.code) == ("job.failed", "invalid_input")
    assert "inputs/job-1/gone.png" in terminal.message and "not in storage" in terminal.message
    assert engine.runs == 0 and parse_event(store.objects[keys.manifest_key("job-1")]) == terminal


def test_a_missing_model_fails_the_job_naming_the_file() -> None:
    store, published, live = MemoryStore(), [], []
    engine = CountingEngine()

    def needs_a_model(info: StepInfo) -> None:
        raise MissingModelError(
            "a PyraCanny image prompt", Path("models/controlnet/control-lora-canny-rank128.safetensors")
        )

    engine.before_step = needs_a_model
    store.objects["inputs/job-1/a.png"] = png(Image.new("RGB", (8, 8)))
    inputs = ImageInputs(input_image_key="inputs/job-1/a.png")
    terminal = asyncio.run(
        runner(engine, store, published, live).run(job(1, JobType.IMAGE_PROMPT, inputs), 1)
    )
    assert (terminal.type, terminal.code) == ("job.failed", "missing_model")
    assert "`control-lora-canny-rank128.safetensors` in `models/controlnet`" in terminal.message


class RecordingEngine(CountingEngine):
    """Attaches a run record to each image, as `WorkerEngine.run` does."""

    def run(self, job_type, params, inputs, seeds, on_step):  # type: ignore[no-untyped-def]
        record = RunRecord(params.model_copy(update={"guidance_scale": 1.0}), base_model="used.safetensors")
        for image in super().run(job_type, params, inputs, seeds, on_step):
            yield RecordedImage(image.index, image.seed, image.image, "euler", "karras", record=record)


@pytest.mark.parametrize(("extension", "scheme"), [("webp", "fooocus"), ("jpeg", "a1111"), ("png", "a111")])
def test_images_are_stored_under_save_name_with_the_runs_metadata(extension: str, scheme: str) -> None:
    store, published, live = MemoryStore(), [], []
    queued = job(2)
    params = queued.params.model_copy(
        update={"save_name": "my-cat", "save_extension": extension, "save_meta": True, "meta_scheme": scheme}
    )
    terminal = asyncio.run(
        runner(RecordingEngine(), store, published, live).run(queued.model_copy(update={"params": params}), 1)
    )
    day = queued.occurred_at.date().isoformat()
    assert [image.key for image in terminal.images] == [
        f"outputs/{day}/my-cat-0.{extension}",
        f"outputs/{day}/my-cat-1.{extension}",
    ]
    data = store.objects[terminal.images[1].key]
    assert Image.open(io.BytesIO(data)).format == {"webp": "WEBP", "jpeg": "JPEG", "png": "PNG"}[extension]
    text, read_scheme = read_metadata(data)
    assert text is not None
    if read_scheme == "fooocus":
        meta = json.loads(text)
        # The record's values (what the engine ran with), not the request's.
        assert (meta["guidance_scale"], meta["base_model"], meta["seed"]) == (1.0, "used", "12")
    else:
        assert read_scheme == "a1111"
        assert "CFG scale: 1.0" in text and "Model: used" in text and "Seed: 12" in text


def test_save_meta_false_embeds_nothing() -> None:
    store, published, live = MemoryStore(), [], []
    terminal = asyncio.run(runner(RecordingEngine(), store, published, live).run(job(1), 1))
    assert read_metadata(store.objects[terminal.images[0].key]) == (None, None)


def test_a_job_cancelled_while_queued_ends_cancelled_without_running() -> None:
    store, published, live = MemoryStore(), [], []
    engine = CountingEngine()
    run = runner(engine, store, published, live)
    run.interrupts.cancel("job-1", "cancelled")
    terminal = asyncio.run(run.run(job(), attempt=2))
    assert engine.runs == 0 and [e.type for e in published] == ["job.cancelled"]
    assert (terminal.reason, terminal.images, terminal.seq) == ("cancelled", [], job_seq(2, 1))
    # Its manifest makes a redelivery say the same thing again.
    assert parse_event(store.objects[keys.manifest_key("job-1")]) == terminal


def test_a_cancel_marker_in_storage_skips_a_job_whose_cancel_this_worker_never_read() -> None:
    """A job that waited longer than the worker remembers cancels: the edge's marker still ends it."""
    store, published, live = MemoryStore(), [], []
    store.objects[keys.cancel_key("job-1")] = b"cancelled"
    engine = CountingEngine()
    run = runner(engine, store, published, live)
    terminal = asyncio.run(run.run(job(), attempt=1))
    assert engine.runs == 0 and [e.type for e in published] == ["job.cancelled"]
    assert terminal.reason == "cancelled"
    assert keys.cancel_key("job-1") not in store.objects  # the job ended: its marker goes


def test_a_cancel_is_forgotten_once_its_job_ended() -> None:
    store, published, live = MemoryStore(), [], []
    run = runner(CountingEngine(), store, published, live)
    run.interrupts.cancel("job-1", "cancelled")
    run.interrupts.cancel("job-2", "cancelled")
    asyncio.run(run.run(job(), attempt=1))
    assert run.interrupts.cancelled("job-1") is None and run.interrupts.remembered == 1


def test_cancels_are_remembered_for_their_memory_only() -> None:
    now = [0.0]
    switch = InterruptSwitch(memory_s=60, clock=lambda: now[0])
    for second in range(100):
        now[0] = float(second)
        switch.cancel(f"job-{second}", "cancelled")
    assert switch.remembered == 61  # seconds 39..99: older ones were dropped as new ones came
    assert switch.cancelled("job-38") is None and switch.cancelled("job-39") == "cancelled"
    now[0] = 200.0
    assert switch.cancelled("job-99") is None  # too old to count, even before it is dropped


def test_a_cancel_during_the_run_stops_at_the_next_step() -> None:
    store, published, live = MemoryStore(), [], []
    engine = CountingEngine(steps=5)
    run = runner(engine, store, published, live)
    steps: list[int] = []

    def cancel_at_step_two(info: StepInfo) -> None:
        steps.append(info.step)
        if info.step == 2:
            run.interrupts.cancel("job-1", "cancelled")

    engine.before_step = cancel_at_step_two
    terminal = asyncio.run(run.run(job(), attempt=1))
    assert terminal.type == "job.cancelled" and terminal.images == [] and steps == [1, 2]


def test_a_cancel_while_the_last_image_is_stored_still_ends_the_job_cancelled_with_its_images() -> None:
    published: list = []
    run: JobRunner

    class CancellingStore(MemoryStore):
        async def put(self, key: str, data: bytes, content_type: str = "") -> str:
            if key.endswith("-1.png"):  # the second, last image: every step is done
                run.interrupts.cancel("job-1", "cancelled")
            return await super().put(key, data, content_type)

    store = CancellingStore()
    run = runner(CountingEngine(steps=2), store, published, [])
    terminal = asyncio.run(run.run(job(), attempt=1))
    assert terminal.type == "job.cancelled" and [i.seed for i in terminal.images] == [11, 12]
    assert [e.type for e in published] == ["job.started", "job.cancelled"]


class NamedEngine(CountingEngine):
    """Yields images that say which sampler, scheduler and refiner actually ran."""

    def run(self, job_type, params, inputs, seeds, on_step):  # type: ignore[no-untyped-def]
        for generated in super().run(job_type, params, inputs, seeds, on_step):
            yield GeneratedImage(
                generated.index,
                generated.seed,
                generated.image,
                "dpmpp_2m_sde",
                "sgm_uniform",
                "refiner.safetensors",
                "joint",
                ("sampler 'dpmpp_3m_sde' has no diffusers equivalent: 'dpmpp_2m_sde' used",),
            )


def test_metadata_names_what_actually_ran() -> None:
    store, published, live = MemoryStore(), [], []
    params = GenerationParams(
        image_seed=11,
        refiner_model_name="refiner.safetensors",
        advanced_params={"sampler_name": "dpmpp_3m_sde", "scheduler_name": "turbo"},
    )
    queued = JobQueued(job_id="job-1", seq=0, job_type=JobType.TEXT_TO_IMAGE, params=params)

    terminal = asyncio.run(runner(NamedEngine(steps=1), store, published, live).run(queued, attempt=1))

    stored = Image.open(io.BytesIO(store.objects[terminal.images[0].key]))
    metadata = json.loads(stored.text["parameters"])
    assert (metadata["sampler"], metadata["scheduler"]) == ("dpmpp_2m_sde", "sgm_uniform")
    assert (metadata["refiner_model"], metadata["refiner_swap_method"]) == ("refiner", "joint")
    assert metadata["notes"] == ["sampler 'dpmpp_3m_sde' has no diffusers equivalent: 'dpmpp_2m_sde' used"]
    assert metadata["seed"] == "11" and metadata["adm_guidance"] == "(1.5, 0.8, 0.3)"
