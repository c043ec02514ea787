"""Connection settings of the object store, read from ``FLEET_S3_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


@dataclass(frozen=True, kw_only=True)
class StorageSettings:
    """Where the S3-compatible store is and how to talk to it.

    The default keys are the development ones; ``weed mini`` started without credentials accepts any key.
    ``region`` is fixed so that the client never asks the server for a bucket's location.
    """

    endpoint: str = "127.0.0.1:9000"
    access_key: str = "fleet"
    secret_key: str = field(default="fleet-secret", repr=False)
    bucket: str = "fooocus-fleet"
    secure: bool = False
    region: str = "us-east-1"
    connect_timeout_s: float = 2.0
    read_timeout_s: float = 30.0
    retries: int = 1

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StorageSettings:
        """Settings from the environment (or ``environ``); unset variables keep the defaults.

        Reads ``FLEET_S3_ENDPOINT``, ``_ACCESS_KEY``, ``_SECRET_KEY``, ``_BUCKET``, ``_SECURE``, ``_REGION``.
        """
        env = os.environ if environ is None else environ
        default = cls()
        secure_raw = env.get("FLEET_S3_SECURE")
        return cls(
            endpoint=env.get("FLEET_S3_ENDPOINT", default.endpoint),
            access_key=env.get("FLEET_S3_ACCESS_KEY", default.access_key),
            secret_key=env.get("FLEET_S3_SECRET_KEY", default.secret_key),
            bucket=env.get("FLEET_S3_BUCKET", default.bucket),
            secure=default.secure if secure_raw is None else _parse_bool("FLEET_S3_SECURE", secure_raw),
            region=env.get("FLEET_S3_REGION", default.region),
        )
