"""Object storage for fooocus-fleet: an async S3 client, its key scheme and its errors.

Imports only the standard library and minio (with its urllib3).
"""

from storage.client import DEFAULT_CHUNK_SIZE, ObjectInfo, ObjectStore, make_http_client, translate_error
from storage.errors import ObjectNotFound, StorageError, StorageUnavailable
from storage.keys import (
    IMAGE_CONTENT_TYPES,
    content_type_for,
    file_key,
    input_key,
    manifest_key,
    output_key,
    read_model_key,
)
from storage.settings import StorageSettings

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "IMAGE_CONTENT_TYPES",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "StorageError",
    "StorageSettings",
    "StorageUnavailable",
    "content_type_for",
    "file_key",
    "input_key",
    "make_http_client",
    "manifest_key",
    "output_key",
    "read_model_key",
    "translate_error",
]
