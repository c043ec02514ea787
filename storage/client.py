"""``ObjectStore``: an async facade over the synchronous minio SDK.

Every blocking call runs in a worker thread (``asyncio.to_thread``); minio's and urllib3's errors come out as
``ObjectNotFound``, ``StorageUnavailable`` or ``StorageError``, chained ``from`` the original.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import urllib3
from minio import Minio
from minio.error import MinioException, S3Error, ServerError

from storage.errors import ObjectNotFound, StorageError, StorageUnavailable

if TYPE_CHECKING:
    from urllib3 import BaseHTTPResponse

    from storage.settings import StorageSettings

T = TypeVar("T")

DEFAULT_CHUNK_SIZE = 256 * 1024
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchObject"})
_BUCKET_EXISTS_CODES = frozenset({"BucketAlreadyOwnedByYou", "BucketAlreadyExists"})


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What ``stat`` tells about a stored object."""

    size: int
    content_type: str
    etag: str
    last_modified: datetime | None = None


def make_http_client(
    *, connect_timeout_s: float = 2.0, read_timeout_s: float = 30.0, retries: int = 1
) -> urllib3.PoolManager:
    """A urllib3 pool with short timeouts and few retries, so a dead endpoint fails in seconds.

    minio's own default waits 5 minutes per connect and retries 5 times; ``Retry-After`` is ignored so that a
    server cannot stretch a retry either.
    """
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=connect_timeout_s, read=read_timeout_s),
        maxsize=16,
        retries=urllib3.Retry(
            total=retries,
            connect=retries,
            read=retries,
            backoff_factor=0.2,
            status_forcelist=(500, 502, 503, 504),
            respect_retry_after_header=False,
        ),
    )


def translate_error(exc: Exception, key: str | None = None) -> StorageError:
    """Map a minio or urllib3 exception to this package's hierarchy (the caller raises it ``from exc``)."""
    where = f" (key {key!r})" if key else ""
    if isinstance(exc, S3Error):
        if exc.code in _NOT_FOUND_CODES:
            return ObjectNotFound(f"object not found{where}", key=key)
        return StorageError(f"S3 error {exc.code}: {exc.message}{where}", key=key)
    if isinstance(exc, ServerError):
        return StorageUnavailable(f"S3 server error {exc.status_code}{where}", key=key)
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
        return StorageUnavailable(f"object storage unreachable{where}: {exc}", key=key)
    return StorageError(f"object storage error{where}: {exc}", key=key)


_TRANSLATED = (MinioException, urllib3.exceptions.HTTPError, OSError)


class ObjectStore:
    """Async access to one bucket of an S3-compatible store (MinIO, SeaweedFS).

    Args:
        settings: endpoint, credentials, bucket and timeouts.
        http_client: a urllib3 pool to use instead of ``make_http_client(...)`` built from ``settings``.
    """

    def __init__(self, settings: StorageSettings, *, http_client: urllib3.PoolManager | None = None) -> None:
        self._settings = settings
        self._http = http_client or make_http_client(
            connect_timeout_s=settings.connect_timeout_s,
            read_timeout_s=settings.read_timeout_s,
            retries=settings.retries,
        )
        self._minio = Minio(
            settings.endpoint,
            access_key=settings.access_key,
            secret_key=settings.secret_key,
            secure=settings.secure,
            region=settings.region,
            http_client=self._http,
        )

    @property
    def bucket(self) -> str:
        """The bucket every key refers to."""
        return self._settings.bucket

    def close(self) -> None:
        """Drop pooled connections. The store stays usable; new connections are opened on demand."""
        self._http.clear()

    async def _run(self, key: str | None, func: Callable[[], T]) -> T:
        """Run a blocking SDK call in a thread; translate its errors, naming ``key``."""
        try:
            return await asyncio.to_thread(func)
        except _TRANSLATED as e:
            raise translate_error(e, key) from e

    async def ensure_bucket(self) -> None:
        """Create the bucket unless it exists. Idempotent, and safe when several processes race."""

        def create() -> None:
            if self._minio.bucket_exists(self.bucket):
                return
            try:
                self._minio.make_bucket(self.bucket)
            except S3Error as e:
                if e.code not in _BUCKET_EXISTS_CODES:
                    raise

        await self._run(None, create)

    async def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        """Store ``data`` at ``key``, replacing any object there; returns the new ETag."""

        def put() -> str:
            result = self._minio.put_object(
                self.bucket, key, io.BytesIO(data), len(data), content_type=content_type
            )
            return result.etag or ""

        return await self._run(key, put)

    async def get(self, key: str) -> bytes:
        """The whole object at ``key``. Raises ``ObjectNotFound`` when there is none."""

        def get() -> bytes:
            response = self._minio.get_object(self.bucket, key)
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

        return await self._run(key, get)

    async def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> str:
        """Store the file at ``path`` at ``key``, streamed (in parts when it is large); returns the ETag."""

        def put() -> str:
            result = self._minio.fput_object(self.bucket, key, str(path), content_type=content_type)
            return result.etag or ""

        return await self._run(key, put)

    async def get_file(self, key: str, path: Path) -> None:
        """Write the object at ``key`` to ``path``, streamed. Raises ``ObjectNotFound`` when there is none;
        minio writes a part file first, so ``path`` never holds half an object."""
        await self._run(key, lambda: self._minio.fget_object(self.bucket, key, str(path)))

    async def stat(self, key: str) -> ObjectInfo:
        """Size, content type and ETag of the object at ``key``; ``ObjectNotFound`` when there is none."""

        def stat() -> ObjectInfo:
            obj = self._minio.stat_object(self.bucket, key)
            return ObjectInfo(
                size=obj.size or 0,
                content_type=obj.content_type or "application/octet-stream",
                etag=obj.etag or "",
                last_modified=obj.last_modified,
            )

        return await self._run(key, stat)

    async def exists(self, key: str) -> bool:
        """Whether an object is stored at ``key``."""
        try:
            await self.stat(key)
        except ObjectNotFound:
            return False
        return True

    async def delete(self, key: str) -> None:
        """Remove the object at ``key``; removing a missing object is not an error."""
        await self._run(key, lambda: self._minio.remove_object(self.bucket, key))

    async def presign_get(self, key: str, expires: timedelta = timedelta(hours=1)) -> str:
        """A URL that GETs ``key`` without credentials until ``expires`` has passed (1 s to 7 days).

        No request is made: the region is fixed in the settings, so signing is local. The URL names the
        endpoint this store was configured with.
        """
        return await self._run(
            key, lambda: self._minio.presigned_get_object(self.bucket, key, expires=expires)
        )

    async def iter_chunks(
        self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE, *, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        """Stream the object at ``key`` (or ``length`` bytes from ``offset``) in chunks of ``chunk_size``.

        ``ObjectNotFound`` comes from the first ``__anext__``. Close the iterator early with
        ``contextlib.aclosing`` so the connection is released at once.
        """
        if chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        if offset < 0 or (length is not None and length <= 0):
            raise ValueError(f"offset must be >= 0 and length > 0, got offset={offset} length={length}")
        response: BaseHTTPResponse = await self._run(
            key, lambda: self._minio.get_object(self.bucket, key, offset=offset, length=length or 0)
        )
        try:
            while True:
                chunk = await self._run(key, lambda: response.read(chunk_size))
                if not chunk:
                    return
                yield chunk
        finally:
            response.close()
            response.release_conn()
