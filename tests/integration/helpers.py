"""Small clients for integration tests: HTTP polling, a webhook listener, reading the log."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import aio_pika
import httpx

from contracts import JobEvent, parse_event
from contracts.topology import Topology

SMALL = {"aspect_ratios_selection": "64*64", "performance_selection": "Lightning", "style_selections": []}


def post(url: str, body: dict[str, Any], timeout: float = 120) -> httpx.Response:
    """POST JSON without a Content-Type header, as Fooocus-API's example clients do."""
    return httpx.post(url, content=json.dumps(body), timeout=timeout)


def poll(edge_url: str, job_id: str, until: Callable[[dict[str, Any]], bool], timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = httpx.get(
            f"{edge_url}/v1/generation/query-job",
            params={"job_id": job_id, "require_step_preview": "true"},
            timeout=10,
        ).json()
        if until(job):
            return job
        time.sleep(0.05)
    raise TimeoutError(f"job {job_id} never reached the expected state: {job}")


def finished(job: dict[str, Any]) -> bool:
    return job["job_type"] != "Not Found" and job["job_stage"] in ("SUCCESS", "ERROR")


@contextmanager
def webhook_listener(
    statuses: Sequence[int] = (), delays: Sequence[float] = ()
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local HTTP server that records every POST (parsed body, raw bytes, headers, arrival time).

    The n-th request waits `delays[n]` seconds, then answers `statuses[n]`; later ones answer 200 at once.
    """
    received: list[dict[str, Any]] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            raw = self.rfile.read(length)
            with lock:
                n = len(received)
                received.append(
                    {"body": json.loads(raw), "raw": raw, "headers": dict(self.headers), "at": time.time()}
                )
            if n < len(delays):
                time.sleep(delays[n])
            try:
                self.send_response(statuses[n] if n < len(statuses) else 200)
                self.end_headers()
            except OSError:
                pass  # the sender gave up waiting (a timeout test)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/status", received
    finally:
        server.shutdown()


def wait_for(check: Callable[[], bool], timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


async def _publish_events(url: str, topology: Topology, events: Sequence[Any]) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(topology.events.name)
        for event in events:
            message = aio_pika.Message(
                event.model_dump_json().encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT
            )
            await exchange.publish(message, routing_key=event.type)


def publish_events(url: str, namespace: str, *events: Any) -> None:
    """Publish events to a namespace's events exchange, as a worker would."""
    asyncio.run(_publish_events(url, Topology(namespace), events))


async def _read_log(url: str, topology: Topology, idle_s: float) -> list[JobEvent]:
    events: list[JobEvent] = []
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=1000)
        queue = await channel.get_queue(topology.log.name)
        async with queue.iterator(arguments={"x-stream-offset": "first"}) as messages:
            while True:
                try:
                    message = await asyncio.wait_for(messages.__anext__(), idle_s)
                except TimeoutError:
                    break
                await message.ack()
                events.append(parse_event(message.body))  # type: ignore[arg-type]
    return events


def read_log(url: str, namespace: str, idle_s: float = 1.5) -> list[JobEvent]:
    """Every event in a namespace's log, from the first offset."""
    return asyncio.run(_read_log(url, Topology(namespace), idle_s))


def terminal_events(events: list[JobEvent], job_id: str) -> list[JobEvent]:
    """Distinct terminal events of a job (a republished one has the same event_id)."""
    by_id = {
        e.event_id: e
        for e in events
        if getattr(e, "job_id", None) == job_id and e.type in ("job.succeeded", "job.failed", "job.cancelled")
    }
    return list(by_id.values())
