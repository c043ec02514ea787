"""The storage package's error hierarchy; minio and urllib3 errors are translated into these."""

from __future__ import annotations


class StorageError(Exception):
    """Any failure of the object store; the base of this package's errors."""

    status_code: int = 500
    message: str = "object storage error"

    def __init__(self, message: str | None = None, *, key: str | None = None) -> None:
        self.key = key
        super().__init__(message or self.message)


class ObjectNotFound(StorageError):
    """The requested object does not exist."""

    status_code = 404
    message = "object not found"


class StorageUnavailable(StorageError):
    """The object store cannot be reached, timed out or answered with a server error."""

    status_code = 503
    message = "object storage unavailable"
