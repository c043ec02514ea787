"""The real edge app (routes, limits, auth, error answers) over Sanic's ASGI test client, with the broker
and object storage replaced by in-memory fakes that still put every message through its wire form."""

from __future__ import annotations

import asyncio
import base64
import io
import struct
import uuid
import zlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
from PIL import Image
from sanic import Sanic
from sanic_testing.testing import SanicASGITestClient, TestingResponse

from contracts import (
    ControlCommand,
    DescribeImage,
    JobDeleted,
    JobQueued,
    JobSucceeded,
    OutputImage,
    ToolRequest,
    ToolResult,
    job_seq,
    parse_event,
)
from edge.app import build_app
from edge.inputs import ImageFetcher
from edge.readmodel import ReadModel
from edge.results import ResultRenderer
from edge.services import Services
from edge.settings import EdgeSettings
from edge.webhooks import WebhookSender
from edge.workers import WorkerRoster
from storage import ObjectNotFound
from storage.client import ObjectInfo
from tests.edge.support import sqlite_model

ASGI_BASE = "http://edge.test"


# ---- images ---------------------------------------------------------------------------------------------


def png(size: tuple[int, int] = (8, 8), fmt: str = "PNG") -> bytes:
    """A small image in `fmt` (any format Pillow writes)."""
    out = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(out, format=fmt)
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def png_claiming(width: int, height: int) -> bytes:
    """A real 1×1 PNG whose header claims another size (a bomb's header costs nothing to send)."""
    data = bytearray(png((1, 1)))
    ihdr = bytearray(data[12:29])  # b"IHDR" + 13 bytes of fields
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


BAD_IMAGES: dict[str, tuple[bytes, str]] = {
    "bomb header": (png_claiming(100_000, 100_000), "too many pixels"),
    "one side too long": (png_claiming(8000, 64), "pixels a side"),
    "truncated": (png((64, 64))[:60], "not a readable image"),
    "zero width": (png_claiming(0, 10), "not a readable image"),
    "text": (b"hello, this is not an image", "not a readable image"),
    "pdf": (b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", "not a readable image"),
    "eps": (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n", "not a readable image"),
    "svg": (b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>', "not a readable image"),
    "ico": (png((16, 16), "ICO"), "not a readable image"),  # Pillow reads it; we do not
    "empty-ish": (b"\x89PNG\r\n\x1a\n", "not a readable image"),
}


# ---- fakes ----------------------------------------------------------------------------------------------


class MemoryStore:
    """The few `ObjectStore` calls the edge makes, on a dict."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}
        self.reads: list[str] = []

    async def ensure_bucket(self) -> None:
        return None

    async def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        self.objects[key] = (bytes(data), content_type)
        return key

    async def get(self, key: str) -> bytes:
        self.reads.append(key)
        if key not in self.objects:
            raise ObjectNotFound(key)
        return self.objects[key][0]

    async def stat(self, key: str) -> ObjectInfo:
        self.reads.append(key)
        data, content_type = self.objects.get(key) or (None, "")
        if data is None:
            raise ObjectNotFound(key)
        return ObjectInfo(size=len(data), content_type=content_type, etag="", last_modified=None)

    async def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    async def iter_chunks(self, key: str, chunk_size: int = 65536) -> AsyncIterator[bytes]:
        data = await self.get(key)
        for start in range(0, len(data), chunk_size):
            yield data[start : start + chunk_size]


class FakeBus:
    """Publishes nothing; every job and tool request is serialized and read back as the broker would
    carry it, and each job succeeds a moment later with one stored image, as a worker would."""

    def __init__(self, projections: ReadModel, store: MemoryStore) -> None:
        self.projections, self.store = projections, store
        self.jobs: list[JobQueued] = []
        self.commands: list[ControlCommand] = []

    async def submit(self, job: JobQueued) -> None:
        carried = parse_event(job.model_dump_json().encode())
        assert isinstance(carried, JobQueued)
        self.jobs.append(carried)
        asyncio.get_running_loop().call_later(0.005, lambda: asyncio.ensure_future(self._succeed(carried)))

    async def _succeed(self, job: JobQueued) -> None:
        key = f"outputs/2026-01-01/{job.job_id}-0.png"
        await self.store.put(key, png(), "image/png")
        await self.projections.apply(
            JobSucceeded(
                job_id=job.job_id,
                seq=job_seq(1, 1),
                images=[OutputImage(key=key, seed=1)],
                worker_id="fake",
                run_ms=1,
            )
        )

    async def command(self, command: ControlCommand) -> None:
        self.commands.append(command)

    async def stop_running(self) -> None:
        return None

    async def delete_job(self, job_id: str) -> None:
        await self.projections.apply(JobDeleted(job_id=job_id, seq=0))

    async def tool(self, request: ToolRequest, timeout_s: float) -> ToolResult:
        type(request).model_validate_json(request.model_dump_json())
        if isinstance(request, DescribeImage):
            return ToolResult(text="a small square")
        await self.store.put(request.mask_key, png(), "image/png")
        return ToolResult(mask_key=request.mask_key)

    async def close(self) -> None:
        return None


class EdgeUnderTest:
    """One app and its fakes; `call` sends a request from synchronous test code (hypothesis)."""

    def __init__(self, **overrides: Any) -> None:
        settings: dict[str, Any] = {
            "sync_timeout_s": 5.0,
            "refresh_wait_s": 0.01,
            "queue_size": 100_000,
            **overrides,
        }
        self.settings = EdgeSettings(_env_file=None, **settings)  # type: ignore[call-arg]
        self.app: Sanic = build_app(self.settings, name=f"sec-{uuid.uuid4().hex[:10]}")
        self.store = MemoryStore()
        projections = sqlite_model()
        self.bus = FakeBus(projections, self.store)
        renderer = ResultRenderer(self.store, "http://edge.test")  # type: ignore[arg-type]
        self.app.ctx.services = Services(
            settings=self.settings,
            store=self.store,  # type: ignore[arg-type]
            model=projections,
            bus=self.bus,  # type: ignore[arg-type]
            renderer=renderer,
            webhooks=WebhookSender(projections, renderer, self.settings, self.bus),  # type: ignore[arg-type]
            workers=WorkerRoster(timedelta(seconds=20)),
            fetcher=ImageFetcher(self.settings),
        )
        self.client = SanicASGITestClient(self.app)
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self._start())

    async def _start(self) -> None:
        # The test client starts the app before every request (seconds each with many routes); once will do.
        await self.app._startup()
        await self.app._server_event("init", "before")
        await self.app._server_event("init", "after")

    async def request(self, method: str, path: str, **kwargs: Any) -> TestingResponse:
        url = f"{ASGI_BASE}{path}"
        response = await httpx.AsyncClient.request(self.client, method, url, **kwargs)
        response.__class__ = TestingResponse
        return response  # type: ignore[return-value]

    def call(self, method: str, path: str, **kwargs: Any) -> TestingResponse:
        return self.loop.run_until_complete(self.request(method, path, **kwargs))

    def routes(self, skip: tuple[str, ...] = ("HEAD", "OPTIONS")) -> list[tuple[str, str]]:
        """(method, path) of every route the router knows, parameters filled with sample values."""
        found = set()
        for route in self.app.router.routes:
            path = "/" + route.path.lstrip("/")
            for part in route.parts:
                if part.startswith("<"):
                    path = path.replace(part, "2026-01-01" if "day" in part else "x.png")
            for method in route.methods:
                if method not in skip:
                    found.add((method, path))
        return sorted(found)

    def reset(self) -> None:
        self.bus.jobs.clear()
        self.bus.commands.clear()
        self.store.objects.clear()
        self.store.reads.clear()

    def close(self) -> None:
        self.loop.run_until_complete(self.app.ctx.services.fetcher.close())
        self.loop.run_until_complete(self.app.ctx.services.webhooks.close())
        self.loop.close()
