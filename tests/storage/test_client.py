"""``ObjectStore`` against a real S3 server (``weed mini`` with authentication on)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from contextlib import aclosing
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from minio.error import S3Error

from storage import ObjectInfo, ObjectNotFound, ObjectStore, StorageError, StorageSettings, make_http_client

pytestmark = pytest.mark.integration


def unique_key(prefix: str = "t") -> str:
    return f"{prefix}/{uuid4().hex}.bin"


async def test_put_get_stat_exists_delete_round_trip(store: ObjectStore) -> None:
    key = unique_key()
    data = os.urandom(10_000)
    etag = await store.put(key, data, "image/png")

    assert await store.get(key) == data
    info = await store.stat(key)
    assert isinstance(info, ObjectInfo)
    assert (info.size, info.content_type) == (len(data), "image/png")
    assert info.etag == etag == hashlib.md5(data).hexdigest()
    assert info.last_modified is not None
    assert await store.exists(key)

    await store.delete(key)
    assert not await store.exists(key)
    with pytest.raises(ObjectNotFound):
        await store.get(key)


async def test_put_replaces(store: ObjectStore) -> None:
    key = unique_key()
    await store.put(key, b"first")
    await store.put(key, b"second", "text/plain")
    assert await store.get(key) == b"second"
    assert (await store.stat(key)).content_type == "text/plain"


async def test_missing_key(store: ObjectStore) -> None:
    key = unique_key("missing")
    with pytest.raises(ObjectNotFound) as info:
        await store.get(key)
    assert info.value.key == key
    assert isinstance(info.value.__cause__, S3Error)
    with pytest.raises(ObjectNotFound):
        await store.stat(key)
    assert await store.exists(key) is False
    await store.delete(key)  # deleting nothing is fine


async def test_files_go_up_and_come_down_streamed_in_parts(store: ObjectStore, tmp_path: Path) -> None:
    key = unique_key()
    data = os.urandom(6 * 1024 * 1024)  # past minio's 5 MiB part size: a multipart upload
    (tmp_path / "up.bin").write_bytes(data)
    etag = await store.put_file(key, tmp_path / "up.bin")

    await store.get_file(key, tmp_path / "down" / "copy.bin")
    assert (tmp_path / "down" / "copy.bin").read_bytes() == data
    assert (await store.stat(key)).etag == etag
    with pytest.raises(ObjectNotFound):
        await store.get_file(unique_key(), tmp_path / "missing.bin")
    assert not (tmp_path / "missing.bin").exists()


async def test_presigned_get(store: ObjectStore, s3_settings: StorageSettings) -> None:
    key = unique_key("presigned")
    data = os.urandom(2048)
    await store.put(key, data, "image/webp")
    url = await store.presign_get(key, timedelta(minutes=5))

    async with httpx.AsyncClient(trust_env=False) as http:
        signed = await http.get(url)
        assert signed.status_code == 200
        assert signed.content == data
        assert signed.headers["content-type"] == "image/webp"
        # Authentication is on: the same object without a signature, or with a forged one, is refused.
        unsigned = await http.get(f"http://{s3_settings.endpoint}/{s3_settings.bucket}/{key}")
        assert unsigned.status_code == 403
        forged = await http.get(url.replace("X-Amz-Signature=", "X-Amz-Signature=00"))
        assert forged.status_code == 403


async def test_iter_chunks_streams_3mb_intact(store: ObjectStore) -> None:
    key = unique_key("big")
    data = os.urandom(3 * 1024 * 1024)
    await store.put(key, data, "image/png")

    chunks = [chunk async for chunk in store.iter_chunks(key, chunk_size=256 * 1024)]
    assert len(chunks) == 12
    assert all(len(chunk) == 256 * 1024 for chunk in chunks)
    assert b"".join(chunks) == data

    ranged = [chunk async for chunk in store.iter_chunks(key, 1000, offset=5, length=2500)]
    assert [len(c) for c in ranged] == [1000, 1000, 500]
    assert b"".join(ranged) == data[5:2505]


async def test_iter_chunks_missing_key_fails_on_first_chunk(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound):
        await store.iter_chunks(unique_key("missing")).__anext__()


@pytest.mark.usefixtures("store")  # creates the bucket
async def test_iter_chunks_closed_early_returns_the_connection(s3_settings: StorageSettings) -> None:
    http = make_http_client()
    store = ObjectStore(s3_settings, http_client=http)
    key = unique_key("early")
    await store.put(key, os.urandom(1024 * 1024))
    pool = http.connection_from_url(f"http://{s3_settings.endpoint}")
    idle = pool.pool.qsize()  # type: ignore[union-attr]

    async with aclosing(store.iter_chunks(key, 1024)) as chunks:
        async for _chunk in chunks:
            assert pool.pool.qsize() == idle - 1  # type: ignore[union-attr]
            break
    assert pool.pool.qsize() == idle  # type: ignore[union-attr]
    assert len(await store.get(key)) == 1024 * 1024


async def test_ensure_bucket_is_idempotent_and_creates(s3_settings: StorageSettings) -> None:
    settings = replace(s3_settings, bucket=f"fleet-test-{uuid4().hex[:12]}")
    fresh = ObjectStore(settings)
    with pytest.raises(StorageError, match="NoSuchBucket"):
        await fresh.put("k", b"before")  # weed's auto-create is off, as on MinIO

    await fresh.ensure_bucket()
    await fresh.ensure_bucket()
    await asyncio.gather(*(ObjectStore(settings).ensure_bucket() for _ in range(4)))
    await fresh.put("k", b"after")
    assert await fresh.get("k") == b"after"


@pytest.mark.usefixtures("store")
async def test_wrong_secret_is_a_storage_error_not_a_miss(s3_settings: StorageSettings) -> None:
    wrong = ObjectStore(replace(s3_settings, secret_key="wrong"))
    with pytest.raises(StorageError, match=r"AccessDenied|SignatureDoesNotMatch") as info:
        await wrong.get(unique_key())
    assert not isinstance(info.value, ObjectNotFound)
