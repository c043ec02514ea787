"""Support for the Fooocus-API compat tests: small images, a module-wide fleet, a fake tools worker."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
from PIL import Image

from contracts import GenerateMask, JobQueued, RefreshModels, ToolResult, WorkerHeartbeat, parse_event
from contracts.topology import Topology
from storage import ObjectStore, StorageSettings
from tests.fleet import FleetEnv
from tests.integration.helpers import read_log


def image_bytes(
    size: tuple[int, int] = (64, 64), fmt: str = "PNG", mode: str = "RGB", color: Any = None
) -> bytes:
    """A small test image; a gradient, so it is not trivially compressible to nothing."""
    image = Image.new(mode, size, color if color is not None else (0, 0, 0) if mode != "L" else 0)
    if color is None:
        pixels = image.load()
        assert pixels is not None
        for x in range(size[0]):
            for y in range(size[1]):
                value = (x * 255 // max(1, size[0] - 1), y * 255 // max(1, size[1] - 1), 128)
                pixels[x, y] = value if mode == "RGB" else (*value, 255) if mode == "RGBA" else value[0]
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass
class Images:
    """Stand-ins for the example clients' files, at test size."""

    bear: bytes = field(default_factory=lambda: image_bytes((64, 64), "JPEG"))
    source: bytes = field(default_factory=lambda: image_bytes((128, 128), "JPEG"))
    mask: bytes = field(default_factory=lambda: _mask((128, 128)))
    prompt0: bytes = field(default_factory=lambda: image_bytes((64, 64), "JPEG"))
    prompt1: bytes = field(default_factory=lambda: image_bytes((64, 64)))
    face: bytes = field(default_factory=lambda: image_bytes((64, 80)))


def _mask(size: tuple[int, int]) -> bytes:
    image = Image.new("RGBA", size, (0, 0, 0, 255))
    for x in range(size[0] // 4, size[0] * 3 // 4):
        for y in range(size[1] // 4, size[1] * 3 // 4):
            image.putpixel((x, y), (255, 255, 255, 255))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def module_env(tmp: Path, rabbitmq: str, s3_endpoint: str, models_dir: Path, cache_dir: Path) -> FleetEnv:
    namespace = f"test-{uuid.uuid4().hex[:10]}"
    logs = tmp / "logs"
    logs.mkdir()
    return FleetEnv(rabbitmq, namespace, s3_endpoint, namespace, models_dir, cache_dir, logs)


def store_for(env: FleetEnv) -> ObjectStore:
    return ObjectStore(
        StorageSettings(endpoint=env.s3_endpoint, access_key="any", secret_key="any", bucket=env.bucket)
    )


def queued_job(env: FleetEnv, job_id: str) -> JobQueued:
    """The `JobQueued` of a job, read back from the log."""
    for event in read_log(env.amqp_url, env.namespace, idle_s=0.5):
        if isinstance(event, JobQueued) and event.job_id == job_id:
            return event
    raise AssertionError(f"job {job_id} is not in the log")


def stored_png(env: FleetEnv, key: str) -> Image.Image:
    """An input the edge stored, decoded (it must be a PNG)."""
    data = asyncio.run(store_for(env).get(key))
    assert data.startswith(b"\x89PNG"), key
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


class FakeToolsWorker:
    """Answers tool requests and refresh commands as a worker would, without a model.

    Describe answers `describe`; a mask request writes a white PNG mask where the worker would, or
    answers `ToolResult(error=...)` when `mask_error` is set. A `RefreshModels` gets a heartbeat.
    """

    def __init__(
        self,
        env: FleetEnv,
        describe: str = "a small test image",
        mask_error: str | None = None,
        models: tuple[str, ...] = ("fake.safetensors",),
        loras: tuple[str, ...] = ("fake-lora.safetensors",),
    ) -> None:
        self.env = env
        self.topology = Topology(env.namespace)
        self.describe = describe
        self.mask_error = mask_error
        self.models = models
        self.loras = loras
        self.requests: list[dict[str, Any]] = []
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        connection = await aio_pika.connect(self.env.amqp_url)
        async with connection:
            channel = await connection.channel()
            tools = await channel.get_queue(self.topology.tools.name)
            control = await channel.get_exchange(self.topology.control.name)
            live = await channel.get_exchange(self.topology.live.name)
            commands = await channel.declare_queue(exclusive=True, auto_delete=True)
            await commands.bind(control)

            async def on_tool(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                async with message.process():
                    body = json.loads(message.body)
                    self.requests.append(body)
                    result = await self._answer(body)
                    await channel.default_exchange.publish(
                        aio_pika.Message(
                            result.model_dump_json().encode(),
                            correlation_id=message.correlation_id,
                            content_type="application/json",
                        ),
                        routing_key=message.reply_to or "",
                    )

            async def on_command(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                async with message.process():
                    if json.loads(message.body).get("type") == RefreshModels().type:
                        await self._beat(live)

            await tools.consume(on_tool)
            await commands.consume(on_command)
            await self._beat(live)
            self._ready.set()
            await self._stop.wait()

    async def _beat(self, live: aio_pika.abc.AbstractExchange) -> None:
        beat = WorkerHeartbeat(worker_id="fake-worker", models=list(self.models), loras=list(self.loras))
        await live.publish(aio_pika.Message(beat.model_dump_json().encode()), routing_key=beat.type)

    async def _answer(self, body: dict[str, Any]) -> ToolResult:
        if body["type"] == "tool.describe":
            return ToolResult(text=self.describe)
        if self.mask_error:
            return ToolResult(error=self.mask_error)
        request = GenerateMask.model_validate(body)
        store = store_for(self.env)
        source = Image.open(io.BytesIO(await store.get(request.image_key)))
        out = io.BytesIO()
        Image.new("L", source.size, 255).save(out, format="PNG")
        await store.put(request.mask_key, out.getvalue(), "image/png")
        return ToolResult(mask_key=request.mask_key)

    def __enter__(self) -> FakeToolsWorker:
        self._thread.start()
        assert self._ready.wait(20), "fake worker did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@contextmanager
def fake_tools_worker(env: FleetEnv, **kwargs: Any) -> Iterator[FakeToolsWorker]:
    with FakeToolsWorker(env, **kwargs) as worker:
        yield worker


__all__ = ["Images", "b64", "fake_tools_worker", "parse_event"]
