"""Worker configuration: environment variables `FLEET_*`, overridable by CLI flags."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from worker.engine.presets import preset


def _default_worker_id() -> str:
    return f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"


class WorkerSettings(BaseSettings):
    """What one worker process needs; the defaults run on one machine."""

    model_config = SettingsConfigDict(env_prefix="FLEET_", extra="ignore")

    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    namespace: str = "fleet"
    worker_id: str = Field(default_factory=_default_worker_id)
    models_dir: Path = Path("var/models")
    cache_dir: Path = Path("var/cache")
    default_model: str | None = Field(None, description="Default checkpoint; the preset's when unset.")
    preset: str = Field("default", description="Fooocus model preset: the defaults of requests.")
    model_cache_gb: float = Field(0.0, ge=0, description="Checkpoints kept warm within this; 0 keeps one.")
    lora_cache_size: int = Field(8, ge=1, description="LoRA adapters kept loaded per model.")
    device: str = "cpu"
    progress_interval_s: float = Field(0.25, description="Least time between two progress events.")
    heartbeat_interval_s: float = 5.0

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, value: str) -> str:
        return preset(value).name  # a typo stops the worker at start, naming the known presets
