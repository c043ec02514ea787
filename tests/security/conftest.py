"""Fixtures of the hostile-input suite: the edge app over fakes, and small real HTTP servers that behave
badly (redirect inward, trickle, never stop sending)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from devservices.s3 import WeedServer
from tests.conftest import namespace_env
from tests.fleet import Fleet, FleetEnv
from tests.security.harness import EdgeUnderTest, png

Behaviour = Callable[[BaseHTTPRequestHandler], None]


@pytest.fixture(scope="session")
def _edges() -> Iterator[dict[str, EdgeUnderTest]]:
    edges: dict[str, EdgeUnderTest] = {}
    yield edges
    for edge in edges.values():
        edge.close()


@pytest.fixture
def make_edge(_edges: dict[str, EdgeUnderTest]) -> Callable[..., EdgeUnderTest]:
    """An edge with these settings; one per distinct settings for the session (starting an app takes
    a second or two), handed out with no jobs, commands or objects."""

    def make(**overrides: Any) -> EdgeUnderTest:
        key = repr(sorted(overrides.items()))
        if key not in _edges:
            _edges[key] = EdgeUnderTest(**overrides)
        edge = _edges[key]
        edge.reset()
        return edge

    return make


class BadServer:
    """A real HTTP server on a loopback address; `behaviours[path]` answers each GET."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        behaviours: dict[str, Behaviour] = {}
        self.behaviours = behaviours
        self.hits: list[str] = []
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append(self.path)
                behaviour = behaviours.get(self.path.split("?")[0])
                if behaviour is None:
                    self.send_error(404)
                    return
                # The edge hanging up on us mid-answer is what it should do.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    behaviour(self)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, path: str, host: str | None = None) -> str:
        return f"http://{host or self.server.server_address[0]}:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve_png(handler: BaseHTTPRequestHandler) -> None:
    data = png()
    handler.send_response(200)
    handler.send_header("Content-Type", "image/png")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def redirect_to(location: str) -> Behaviour:
    def behaviour(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return behaviour


def trickle(handler: BaseHTTPRequestHandler) -> None:
    """A byte every 0.2 s, for ever: every read is quick, the whole never ends."""
    handler.send_response(200)
    handler.send_header("Content-Type", "image/png")
    handler.end_headers()
    for _ in range(600):
        handler.wfile.write(b"\x89")
        handler.wfile.flush()
        time.sleep(0.2)


def endless(handler: BaseHTTPRequestHandler) -> None:
    """No Content-Length, and far more bytes than any cap."""
    handler.send_response(200)
    handler.send_header("Content-Type", "image/png")
    handler.end_headers()
    chunk = b"\0" * 65536
    for _ in range(4096):  # 256 MiB unless the edge stops reading
        handler.wfile.write(chunk)


def lying_length(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "image/png")
    handler.send_header("Content-Length", str(10**12))
    handler.end_headers()
    handler.wfile.write(b"\x89PNG")


@pytest.fixture
def bad_server() -> Iterator[BadServer]:
    server = BadServer()
    yield server
    server.close()


@pytest.fixture
def edge_env(rabbitmq: str, s3_server: WeedServer, tmp_path: Path) -> Iterator[FleetEnv]:
    """A broker namespace and bucket for edges alone: no worker, so no models to write."""
    with namespace_env(rabbitmq, s3_server, tmp_path / "models", tmp_path / "cache", tmp_path) as env:
        yield env


@pytest.fixture
def edges(edge_env: FleetEnv) -> Iterator[Fleet]:
    running = Fleet(edge_env)
    yield running
    running.stop()
