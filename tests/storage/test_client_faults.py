"""``ObjectStore`` against endpoints that fail, each fixture named after its failure. No S3 server needed."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import urllib3

from storage import ObjectNotFound, ObjectStore, StorageError, StorageSettings, StorageUnavailable
from storage.client import translate_error


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def never_answers() -> Iterator[int]:
    """A port that completes the TCP handshake (the kernel's backlog) but never sends a byte."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


@pytest.fixture
def answers_503() -> Iterator[tuple[int, list[float]]]:
    """An HTTP server that answers 503 to everything; yields its port and the time of each request."""
    hits: list[float] = []

    class Handler(BaseHTTPRequestHandler):
        def unavailable(self) -> None:
            hits.append(time.monotonic())
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_HEAD = do_PUT = do_DELETE = unavailable

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1]), hits
    finally:
        server.shutdown()
        server.server_close()


async def test_closed_port_raises_unavailable_within_seconds(closed_port: int) -> None:
    store = ObjectStore(StorageSettings(endpoint=f"127.0.0.1:{closed_port}"))  # the default timeouts
    for call in (store.ensure_bucket, lambda: store.get("k"), lambda: store.put("k", b"x")):
        started = time.monotonic()
        with pytest.raises(StorageUnavailable) as info:
            await call()
        assert time.monotonic() - started < 15
        assert isinstance(info.value.__cause__, urllib3.exceptions.HTTPError)


async def test_exists_does_not_hide_an_unreachable_store(closed_port: int) -> None:
    store = ObjectStore(StorageSettings(endpoint=f"127.0.0.1:{closed_port}"))
    with pytest.raises(StorageUnavailable):
        await store.exists("k")


async def test_silent_server_times_out_as_unavailable(never_answers: int) -> None:
    store = ObjectStore(StorageSettings(endpoint=f"127.0.0.1:{never_answers}", read_timeout_s=0.5))
    started = time.monotonic()
    with pytest.raises(StorageUnavailable):
        await store.stat("k")
    assert time.monotonic() - started < 10


async def test_server_errors_are_retried_once_then_unavailable(answers_503: tuple[int, list[float]]) -> None:
    port, hits = answers_503
    store = ObjectStore(StorageSettings(endpoint=f"127.0.0.1:{port}", retries=1))
    with pytest.raises(StorageUnavailable):
        await store.get("k")
    assert len(hits) == 2


async def test_iter_chunks_rejects_bad_arguments_before_any_request(closed_port: int) -> None:
    store = ObjectStore(StorageSettings(endpoint=f"127.0.0.1:{closed_port}"))
    with pytest.raises(ValueError, match="chunk_size"):
        await store.iter_chunks("k", 0).__anext__()
    with pytest.raises(ValueError, match="length"):
        await store.iter_chunks("k", length=0).__anext__()


def test_translate_error_maps_transport_errors_to_unavailable() -> None:
    cause = urllib3.exceptions.MaxRetryError(
        None, "/b/k", urllib3.exceptions.NewConnectionError(None, "refused")
    )
    assert type(translate_error(cause, "k")) is StorageUnavailable
    assert type(translate_error(ConnectionResetError(), "k")) is StorageUnavailable
    assert type(translate_error(RuntimeError("odd"), "k")) is StorageError


def test_error_hierarchy() -> None:
    assert issubclass(ObjectNotFound, StorageError)
    assert issubclass(StorageUnavailable, StorageError)
    assert (ObjectNotFound.status_code, StorageUnavailable.status_code) == (404, 503)
    assert ObjectNotFound(key="k").key == "k"
