"""Fixtures for the storage tests: one ``weed mini`` per session on free loopback ports, with auth on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from uuid import uuid4

import pytest

from devservices.s3 import WeedServer, start_weed
from storage import ObjectStore, StorageSettings

ACCESS_KEY = "fleet-test"
SECRET_KEY = "fleet-test-secret"


@pytest.fixture(scope="session")
def weed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WeedServer]:
    """A ``weed mini`` that enforces ``ACCESS_KEY``/``SECRET_KEY``; stopped at the end of the session."""
    server = start_weed(tmp_path_factory.mktemp("weed"), access_key=ACCESS_KEY, secret_key=SECRET_KEY)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_settings(weed_server: WeedServer) -> StorageSettings:
    """Settings for a bucket of this session's own (a unique name)."""
    return StorageSettings(
        endpoint=weed_server.endpoint,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        bucket=f"fleet-test-{uuid4().hex[:12]}",
        read_timeout_s=10.0,
    )


@pytest.fixture(scope="session")
async def store(s3_settings: StorageSettings) -> AsyncIterator[ObjectStore]:
    """An ``ObjectStore`` on the session's bucket, created up front."""
    object_store = ObjectStore(s3_settings)
    await object_store.ensure_bucket()
    yield object_store
    object_store.close()
