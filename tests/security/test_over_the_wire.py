"""Hostile input against a running edge process over real connections: what only shows across a process
boundary (Sanic's own body limit, raw request paths no client would normalize, the edge's own resolver,
slow and endless servers while other requests keep being answered)."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import httpx
import pytest

from tests.fleet import Edge, Fleet
from tests.security.conftest import BadServer, endless, serve_png, trickle

pytestmark = pytest.mark.integration
KEY = "wire-key"
UPSCALE = "/v2/generation/image-upscale-vary"


def raw_request(edge: Edge, head: str, body: bytes = b"") -> tuple[int, bytes]:
    """Send bytes as they are (no client normalizing the path); the status code and the whole answer."""
    with socket.create_connection(("127.0.0.1", edge.port), timeout=10) as sock:
        sock.sendall(head.encode("latin-1") + b"\r\n" + body)
        answer = b""
        while b"\r\n\r\n" not in answer or not _complete(answer):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return int(answer.split(b" ", 2)[1]), answer


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def alive(edge: Edge, headers: dict[str, str] | None = None) -> None:
    assert httpx.get(f"{edge.url}/ping", headers=headers, timeout=5).json() == "pong"


def test_a_body_over_the_limit_is_413_before_it_is_read(edges: Fleet) -> None:
    edge = edges.edge("edge", FLEET_MAX_REQUEST_BYTES="65536")
    url = f"{edge.url}/v1/generation/text-to-image"
    declared = httpx.post(url, content=b"{" + b" " * 100_000 + b"}", timeout=10)
    assert declared.status_code == 413 and "detail" in declared.json()

    def chunks() -> Any:
        for _ in range(20):
            yield b" " * 10_000

    chunked = httpx.post(url, content=chunks(), timeout=10)
    assert chunked.status_code == 413
    status, answer = raw_request(
        edge, "POST /v1/generation/text-to-image HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n"
    )
    assert status == 413 and b'"detail"' in answer
    status, answer = raw_request(edge, "GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: " + "a" * 20_000 + "\r\n")
    assert status == 413 and answer.endswith(b'{"detail":"Request header exceeds the size limit"}')
    status, _ = raw_request(edge, "NOT HTTP AT ALL\r\n")
    assert status == 400
    alive(edge)


RAW_PATHS = [
    "/docs/../v1/generation/job-queue",
    "/docs/..%2fv1/generation/job-queue",
    "/docs/%2e%2e/v1/generation/job-queue",
    "/files/../v1/generation/job-queue",
    "/files/2026-01-01/../../v1/generation/job-queue",
    "//v1/generation/job-queue",
    "/v1/generation/job-queue/",
    "/v1/generation//job-queue",
    "/v1/generation/job-queue;x=1",
    "/v1/generation/job-queue%00",
    "/V1/generation/job-queue",
    "/docs/../v1/engines/clean_vram",
    "http://evil/v1/generation/job-queue",
]


def test_raw_paths_cannot_borrow_an_open_route(edges: Fleet) -> None:
    edge = edges.edge("edge", "--apikey", KEY)
    for path in RAW_PATHS:
        status, answer = raw_request(edge, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n")
        assert status in (400, 403, 404), (path, answer[:300])
        assert b"running_size" not in answer and b'"ok"' not in answer, path
    status, answer = raw_request(
        edge, "GET /v1/generation/job-queue HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    )
    assert status == 403 and answer.endswith(b'{"detail":"Forbidden"}')
    for path in ("/files/2026-01-01/../../manifests/x.json", "/files/2026-01-01/..%2f..%2finputs%2fa.png"):
        status, answer = raw_request(edge, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n")
        assert status in (403, 404) and b"PNG" not in answer, path  # 403: no route, so no exemption
    alive(edge, {"X-API-KEY": KEY})


def test_the_running_edge_refuses_inner_urls_with_its_own_resolver(
    edges: Fleet, bad_server: BadServer
) -> None:
    bad_server.behaviours["/x.png"] = serve_png
    edge = edges.edge("edge")
    port = bad_server.port
    for source in (
        f"http://127.0.0.1:{port}/x.png",
        f"http://2130706433:{port}/x.png",
        f"http://017700000001:{port}/x.png",
        f"http://127.1:{port}/x.png",
        f"http://localhost:{port}/x.png",
        f"http://0.0.0.0:{port}/x.png",
        f"http://[::ffff:127.0.0.1]:{port}/x.png",
        f"http://[::1]:{port}/x.png",
        "http://169.254.169.254/latest/meta-data/",
    ):
        answer = httpx.post(f"{edge.url}{UPSCALE}", json={"input_image": source}, timeout=30)
        assert answer.status_code == 422, (source, answer.text)
        assert answer.json()["detail"][0]["loc"] == ["body", "input_image"], source
        hook = httpx.post(
            f"{edge.url}/v1/generation/text-to-image",
            json={"webhook_url": source, "async_process": True},
            timeout=30,
        )
        assert hook.status_code == 422 and hook.json()["detail"][0]["loc"] == ["body", "webhook_url"]
    assert bad_server.hits == []
    queue = httpx.get(f"{edge.url}/v1/generation/job-queue").json()
    assert queue["running_size"] == 0 and queue["last_job_id"] is None


def test_slow_and_endless_sources_are_cut_while_the_edge_keeps_answering(
    edges: Fleet, bad_server: BadServer
) -> None:
    bad_server.behaviours.update({"/slow": trickle, "/big": endless, "/ok.png": serve_png})
    edge = edges.edge(
        "edge",
        FLEET_ALLOW_PRIVATE_URLS="1",
        FLEET_URL_TOTAL_TIMEOUT_S="2",
        FLEET_MAX_INPUT_BYTES="300000",
    )
    answers: dict[str, httpx.Response] = {}

    def send(name: str) -> None:
        body = {"input_image": bad_server.url(f"/{name}"), "async_process": True}
        answers[name] = httpx.post(f"{edge.url}{UPSCALE}", json=body, timeout=60)

    started = time.monotonic()
    threads = [threading.Thread(target=send, args=(name,)) for name in ("slow", "big")]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    pinged = time.monotonic()
    alive(edge)  # while both fetches are under way
    assert time.monotonic() - pinged < 1.0
    for thread in threads:
        thread.join(30)
    assert time.monotonic() - started < 10
    slow, big = answers["slow"], answers["big"]
    assert slow.status_code == 422 and "longer than 2 s" in slow.json()["detail"][0]["msg"]
    assert big.status_code == 422 and big.json()["detail"][0]["type"] == "image_too_large"
    # The same edge fetches a well-behaved source (allowed here), so the refusals above are the caps.
    good = httpx.post(
        f"{edge.url}{UPSCALE}", json={"input_image": bad_server.url("/ok.png"), "async_process": True}
    )
    assert good.status_code == 200 and good.json()["job_stage"] == "WAITING", good.text
