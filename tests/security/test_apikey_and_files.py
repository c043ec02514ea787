"""The API key on every route the router knows (so a new route cannot be forgotten), and `/files`
refusing every path that is not one result image."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.security.harness import EdgeUnderTest, png

KEY = "s3cret-key"
BAD_KEYS: list[dict[str, Any]] = [
    {},
    {"X-API-KEY": ""},
    {"X-API-KEY": "wrong"},
    {"X-API-KEY": KEY.upper()},
    {"X-API-KEY": f"{KEY} "},
    {"X-API-KEY": KEY[:-1]},
    {"X-API-KEY": f"{KEY}\u00e9".encode()},  # not ASCII
    {"Authorization": f"Bearer {KEY}"},
    {"X-API-KEYS": KEY},
]
# Fooocus-API's routes, which the enumeration must at least find (a check on the enumeration itself).
KNOWN = {
    ("GET", "/"),
    ("GET", "/ping"),
    ("POST", "/v1/generation/text-to-image"),
    ("POST", "/v2/generation/image-enhance"),
    ("POST", "/v1/tools/describe-image"),
    ("GET", "/v1/engines/clean_vram"),
    ("GET", "/v1/generation/job-history"),
    ("POST", "/v1/generation/stop"),
}


def is_open(path: str, protect_files: bool) -> bool:
    docs = path in ("/docs", "/openapi.json", "/redoc") or path.startswith("/docs/")
    return docs or path == "/ready" or (path.startswith("/files/") and not protect_files)


@pytest.mark.parametrize("protect_files", [False, True])
def test_every_route_refuses_a_missing_or_wrong_key(
    make_edge: Callable[..., EdgeUnderTest], protect_files: bool
) -> None:
    edge = make_edge(apikey=KEY, protect_files=protect_files)
    routes = edge.routes(skip=())
    assert set(routes) >= KNOWN and {m for m, _ in routes} >= {"GET", "POST", "HEAD", "OPTIONS"}
    guarded = [(m, p) for m, p in routes if not is_open(p, protect_files)]
    assert len(guarded) >= 25
    for method, path in guarded:
        for headers in BAD_KEYS:
            answer = edge.call(method, path, headers=headers)
            assert answer.status_code == 403, (method, path, headers)
            if method != "HEAD":
                assert answer.json == {"detail": "Forbidden"}, (method, path)
    assert edge.bus.jobs == [] and edge.bus.commands == []


def test_the_right_key_opens_every_route_and_docs_need_none(make_edge: Callable[..., EdgeUnderTest]) -> None:
    edge = make_edge(apikey=KEY)
    for method, path in edge.routes():
        answer = edge.call(method, path, headers={"X-API-KEY": KEY}, json={})
        assert answer.status_code != 403 and answer.status_code < 500, (method, path, answer.text)
    assert edge.call("GET", "/docs/openapi.json").status_code == 200
    # Where FastAPI serves them, open as the docs are, and the same document.
    assert edge.call("GET", "/openapi.json").json == edge.call("GET", "/docs/openapi.json").json
    assert edge.call("GET", "/redoc").headers["location"] == "/docs/redoc"
    assert edge.call("GET", "/files/2026-01-01/none.png").status_code == 404  # open, and simply absent


def test_no_key_configured_means_no_key_needed(make_edge: Callable[..., EdgeUnderTest]) -> None:
    edge = make_edge()
    assert edge.call("GET", "/ping").json == "pong"


# ---- /files ---------------------------------------------------------------------------------------------

TRAVERSALS = [
    "/files/2026-01-01/..%2F..%2Fmanifests%2Fjob.json",
    "/files/..%2Fmanifests/job.json",
    "/files/2026-01-01/%2e%2e%2fsecret.png",
    "/files/2026-01-01/%252e%252e%252fsecret.png",  # double encoding
    "/files/2026-01-01/..%5Csecret.png",  # backslash
    "/files/2026-01-01/real.png%00.png",
    "/files/2026-01-01/real.png%2500",
    "/files/2026-01-01/.real.png",
    "/files/2026-01-01/real.png.json",
    "/files/2026-01-01/real.PNG",
    "/files/2026-01-01/%2Fetc%2Fpasswd",
    "/files/2026-01-01/..%c0%afsecret.png",  # overlong UTF-8 slash
    "/files/2026-01-01/\u2025secret.png",  # one-dot leader
    "/files/2026-01-01/" + "a" * 300 + ".png",
    "/files/2026-13-45/real.png",
    "/files/2026-1-1/real.png",
    "/files/%32%30%32%36-01-01%2F..%2F..%2Finputs%2Fjob/secret.png",
    "/files/inputs/job/secret.png",
    "/files/2026-01-01/real.png/..",
    "/files/2026-01-01",
    "/files/",
]


@pytest.mark.parametrize("protect_files", [False, True])
def test_files_serves_one_result_image_and_nothing_else(
    make_edge: Callable[..., EdgeUnderTest], protect_files: bool
) -> None:
    edge = make_edge(apikey=KEY, protect_files=protect_files)
    for key in ("outputs/2026-01-01/real.png", "inputs/job/secret.png", "manifests/job.json", "secret.png"):
        edge.loop.run_until_complete(edge.store.put(key, png(), "image/png"))
    headers = {"X-API-KEY": KEY}
    served = edge.call("GET", "/files/2026-01-01/real.png", headers=headers)
    assert served.status_code == 200 and served.content == png()
    edge.store.reads.clear()
    for path in TRAVERSALS:
        answer = edge.call("GET", path, headers=headers)
        assert answer.status_code in (404, 405), path
        assert answer.json["detail"], path
    assert all(key.startswith("outputs/2026-01-01/") for key in edge.store.reads), edge.store.reads
    assert edge.call("GET", "/ping", headers=headers).json == "pong"
