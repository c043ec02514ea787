"""Worker configuration: environment variables `FLEET_*`, overridable by CLI flags."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts.topology import CONSUMER_TIMEOUT_MS
from worker.engine.devices import DEVICES, DTYPES
from worker.engine.presets import preset
from worker.engine.vram import VRAM_SETTINGS


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
    device: str = Field(
        "auto", description="auto (CUDA, then MPS, else CPU), cpu, cuda, cuda:N or mps (`FLEET_DEVICE`)."
    )
    dtype: str = Field(
        "auto", description="auto (float16 on a GPU, float32 on the CPU), float32, float16, bfloat16."
    )
    vram: str = Field(
        "auto",
        description="auto (from the GPU's free memory), normal, low (model offload) or very_low"
        " (sequential offload) (`FLEET_VRAM`).",
    )
    compile: bool = Field(
        False,
        description="torch.compile each checkpoint's UNet, warmed up at start on the preset's default size"
        " (`FLEET_COMPILE=1`): minutes at start, faster steps after, on a GPU in the normal VRAM mode.",
    )
    progress_interval_s: float = Field(0.25, description="Least time between two progress events.")
    heartbeat_interval_s: float = 5.0
    affinity_wait_s: float = Field(
        10.0,
        ge=0,
        description="How long a job waits for a worker with its checkpoint loaded before any worker may"
        " take it; every worker of a namespace uses the same value (it is an argument of the warm queues).",
    )
    # Faults (docs/reliability.md). The deadline stays below the broker's consumer timeout
    # (`CONSUMER_TIMEOUT_MS`), or RabbitMQ would take a long job away before the worker stops it.
    job_deadline_s: float = Field(
        3600.0, gt=0, le=CONSUMER_TIMEOUT_MS / 1000 / 2, description="A job running longer fails."
    )
    stop_grace_s: float = Field(
        25.0, ge=0, description="On SIGTERM, how long the running job may finish before it is handed back."
    )
    storage_retry_s: float = Field(
        5.0, ge=0, description="Pause before handing back a job that met a storage fault (times the attempt)."
    )
    reconnect_interval_s: float = Field(2.0, gt=0, description="Pause between broker reconnection attempts.")
    claim_lease_s: float = Field(
        30.0,
        gt=1,
        description="Lease of a worker's claim on the job it runs, renewed every third of it: a job whose"
        " worker lost its broker connection waits this long after the worker died before another runs it.",
    )
    cancel_memory_s: float = Field(
        3600.0,
        ge=0,
        description="How far back a starting worker reads the cancels stream, and how long it remembers a"
        " cancel; a job that waits longer is still skipped through its cancel marker in storage.",
    )

    @field_validator("device")
    @classmethod
    def _device_name(cls, value: str) -> str:
        if not DEVICES.fullmatch(value):
            raise ValueError(f"{value!r} is not auto, cpu, cuda, cuda:N or mps")
        return value

    @field_validator("dtype")
    @classmethod
    def _dtype_name(cls, value: str) -> str:
        if value != "auto" and value not in DTYPES:
            raise ValueError(f"{value!r} is not auto, {', '.join(DTYPES)}")
        return value

    @field_validator("vram")
    @classmethod
    def _vram_mode(cls, value: str) -> str:
        if value not in VRAM_SETTINGS:
            raise ValueError(f"{value!r} is not {', '.join(VRAM_SETTINGS)}")
        return value

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, value: str) -> str:
        return preset(value).name  # a typo stops the worker at start, naming the known presets
