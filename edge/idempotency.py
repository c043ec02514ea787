"""`Idempotency-Key` on the submitting endpoints: a repeat gets the job the first request made.

The key is scoped to the caller's API key and stored only as a digest (`JobQueued.idempotency_key`),
next to a digest of the request (`JobQueued.request_digest`). Both live in the log, so every edge,
and every edge after a restart, knows which job owns a key. The request digest covers the route, the
query string, the streaming switch and the body as parsed (JSON canonicalised; form fields, and
uploaded files by content), so a client that resends the same request with a new multipart boundary
or other JSON spacing is still repeating itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sanic import Request
from sanic_ext import openapi

from edge.errors import EdgeError, InvalidRequest

H = TypeVar("H")
HEADER = "Idempotency-Key"
API_KEY_HEADER = "X-API-KEY"
MAX_KEY_LENGTH = 255


class KeyConflict(EdgeError):
    """409: the key already made a job from a different request."""

    status_code = 409
    message = "This Idempotency-Key was already used with a different request."


def documented(handler: H) -> H:
    """OpenAPI for a submitting route: the optional header and its 409."""
    handler = openapi.parameter(
        HEADER,
        str,
        "header",
        description="Repeat-safe submit: a repeat (per API key) answers for the job the first request made.",
    )(handler)
    return openapi.response(  # type: ignore[no-any-return]
        409, {"application/json": {"type": "object"}}, "Idempotency-Key used before with a different request"
    )(handler)


def scoped_key(request: Request) -> str | None:
    """The digest naming this caller's key, or None without the header; a bad key is a 422."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise InvalidRequest(
            [
                {
                    "type": "idempotency_key",
                    "loc": ["header", HEADER],
                    "msg": f"1 to {MAX_KEY_LENGTH} printable ASCII characters",
                    "input": None,
                }
            ]
        )
    scope = request.headers.get(API_KEY_HEADER, "")
    return _sha256(scope.encode(), key.encode())


def request_digest(request: Request, streaming: bool) -> str:
    """What makes two requests the same request (see the module docstring)."""
    query = sorted((name, value) for name in request.args for value in request.args.getlist(name))
    parts: dict[str, Any] = {"path": request.path, "query": query, "streaming": streaming}
    if request.content_type.startswith("multipart/form-data"):
        form = request.form or {}
        files = request.files or {}
        parts["form"] = {name: form.getlist(name) for name in sorted(form)}  # type: ignore[attr-defined]
        parts["files"] = {
            name: [hashlib.sha256(f.body).hexdigest() for f in files.getlist(name)]  # type: ignore[attr-defined]
            for name in sorted(files)
        }
    else:
        try:
            parts["json"] = json.loads(request.body or b"{}")
        except (ValueError, UnicodeDecodeError):
            parts["raw"] = hashlib.sha256(request.body).hexdigest()
    return _sha256(json.dumps(parts, sort_keys=True, separators=(",", ":")).encode())


def _sha256(*chunks: bytes) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(len(chunk).to_bytes(8, "big"))  # length-prefixed: no two splits collide
        digest.update(chunk)
    return digest.hexdigest()


class KeyLocks:
    """One lock per key in flight, so two concurrent repeats on one edge make one job."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
