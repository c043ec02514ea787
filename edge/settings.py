"""Edge configuration: environment variables `FLEET_*`, overridable by Fooocus-API's CLI flags."""

from __future__ import annotations

import uuid

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    webhook_url: str | None = Field(None, description="Default webhook target (`--webhook-url`).")
    webhook_timeout_s: float = 15.0
    apikey: str | None = Field(None, description="Require this `X-API-KEY` when set (`--apikey`).")
    protect_files: bool = Field(False, description="Require the API key on /files as well.")
    sync_timeout_s: float = Field(3600.0, description="How long a sync request waits for its job.")
    catch_up_timeout_s: float = 60.0

    @property
    def public_url(self) -> str:
        if self.base_url:
            return self.base_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"
