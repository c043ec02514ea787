"""Edge configuration: environment variables `FLEET_*`, overridable by Fooocus-API's CLI flags."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from functools import cached_property
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from edge.allowlist import AllowList


class EdgeSettings(BaseSettings):
    """What one edge process needs; the defaults run on one machine."""

    model_config = SettingsConfigDict(env_prefix="FLEET_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8888
    base_url: str | None = Field(None, description="Public URL prefix of result files (`--base-url`).")
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    namespace: str = "fleet"
    edge_id: str = Field(default_factory=lambda: f"edge-{uuid.uuid4().hex[:8]}")
    queue_size: int = Field(100, ge=1, description="Unfinished jobs accepted at most (`--queue-size`).")
    queue_history: int = Field(0, ge=0, description="Finished jobs kept, 0 = all (`--queue-history`).")
    history_days: float = Field(0, ge=0, description="Finished jobs older than this are dropped, 0 = never.")
    read_model_url: str | None = Field(
        None,
        description="The read model's database: `sqlite:///path`, or `postgresql://…` for edges that"
        " share one; default `sqlite:///var/readmodel/{namespace}.db`.",
    )
    read_model_snapshot_s: float = Field(
        600.0,
        ge=0,
        description="A SQLite read model is uploaded to S3 this often (0 = never), and a new SQLite edge"
        " starts from the latest upload instead of folding the whole log.",
    )
    webhook_url: str | None = Field(None, description="Default webhook target (`--webhook-url`).")
    webhook_timeout_s: float = Field(15.0, gt=0, description="How long one webhook attempt may take.")
    webhook_secret: str | None = Field(
        None, description="`whsec_<base64>`: sign webhooks the Standard Webhooks way (`--webhook-secret`)."
    )
    webhook_retry_delays_s: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [5.0, 30.0, 120.0, 600.0, 3600.0, 10800.0],
        description="Waits before each retry of a failed webhook; one attempt more than delays.",
    )
    webhook_concurrency: int = Field(16, ge=1, description="Webhook attempts one edge runs at once.")
    webhook_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Inner networks (CIDR) and host names (`*.domain` for all under it) that a request's"
        " webhook may reach, without opening input URLs to them: `10.0.0.0/8,hooks.internal`.",
    )
    apikey: str | None = Field(None, description="Require this `X-API-KEY` when set (`--apikey`).")
    protect_files: bool = Field(False, description="Require the API key on /files as well.")
    sync_timeout_s: float = Field(3600.0, description="How long a sync request waits for its job.")
    reconnect_interval_s: float = Field(2.0, gt=0, description="Pause between broker reconnection attempts.")
    publish_timeout_s: float = Field(
        10.0, gt=0, description="How long a submission waits for the broker's confirm before a 503."
    )
    # Input images (uploads, base64, data URIs, URLs).
    allow_private_urls: bool = Field(
        False,
        description="Let input URLs and webhooks reach private, loopback and link-local addresses (LANs).",
    )
    max_input_bytes: int = Field(20 * 1024**2, ge=1, description="Largest input image, encoded.")
    max_image_side: int = Field(4096, ge=64, description="Largest input width or height, in pixels.")
    max_image_pixels: int = Field(4096 * 4096, ge=64 * 64, description="Largest input area (bomb limit).")
    url_connect_timeout_s: float = 5.0
    url_read_timeout_s: float = 20.0
    url_total_timeout_s: float = Field(
        30.0, gt=0, description="Longest fetch of one input URL, redirects included."
    )
    url_max_redirects: int = Field(3, ge=0)
    max_request_bytes: int = Field(
        100 * 1024**2, ge=1024, description="Largest request body; a larger one is a 413 before it is read."
    )
    # Workers, tools and engines.
    tool_timeout_s: float = Field(60.0, description="How long describe-image and generate_mask wait.")
    refresh_wait_s: float = Field(5.0, description="How long refresh-models waits for the heartbeats.")
    worker_stale_s: float = Field(20.0, description="A worker silent this long is left out of all-models.")

    @field_validator("webhook_secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        if value:
            webhook_key(value)
        return value or None

    @field_validator("webhook_retry_delays_s", mode="before")
    @classmethod
    def _delays(cls, value: object) -> object:
        # `--webhook-retry-delays 1,2,4` or FLEET_WEBHOOK_RETRY_DELAYS_S="1,2,4" (or a JSON list).
        if isinstance(value, str):
            text = value.strip()
            return json.loads(text) if text.startswith("[") else [p for p in text.split(",") if p.strip()]
        return value

    @field_validator("webhook_allow", mode="before")
    @classmethod
    def _allow_entries(cls, value: object) -> object:
        return [p.strip() for p in value.split(",") if p.strip()] if isinstance(value, str) else value

    @field_validator("webhook_allow")
    @classmethod
    def _allow_parses(cls, value: list[str]) -> list[str]:
        AllowList.parse(value)  # a bad entry stops the edge at start, naming it
        return value

    @cached_property
    def webhook_allow_list(self) -> AllowList:
        return AllowList.parse(self.webhook_allow)

    @field_validator("webhook_retry_delays_s")
    @classmethod
    def _positive(cls, value: list[float]) -> list[float]:
        if any(delay <= 0 for delay in value):
            raise ValueError("every retry delay must be above 0 seconds")
        return value

    @property
    def read_model(self) -> str:
        return self.read_model_url or f"sqlite:///var/readmodel/{self.namespace}.db"

    @property
    def public_url(self) -> str:
        if self.base_url:
            return self.base_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"


def webhook_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret; ValueError when it is not one."""
    if not secret.startswith("whsec_"):
        raise ValueError("a webhook secret is `whsec_` followed by base64")
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret is `whsec_` followed by base64") from None
    if len(key) < 16:
        raise ValueError("a webhook secret needs at least 16 random bytes")
    return key
