"""Where the models run and at what precision, chosen from the worker's settings and the machine.

`FLEET_DEVICE=auto` (the default) takes CUDA when a GPU is visible, then Apple's MPS, else the CPU;
`cpu`, `cuda`, `cuda:N` and `mps` name one. `FLEET_DTYPE=auto` (the default) is float16 on a GPU
(the SDXL VAE stays float32 where its config asks for that, `SDXLEngine.restore_vae_dtype`, because
it overflows to NaN in float16) and float32 on the CPU; `float16`, `bfloat16` and `float32` name one,
and a choice the device cannot run is refused at start with a message saying why. `FLEET_VRAM` picks
how much of a checkpoint stays on the GPU (`worker.engine.vram`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from worker.engine.vram import VramMode, choose_vram_mode

DEVICES = re.compile(r"auto|cpu|mps|cuda(:[0-9]+)?")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class Placement:
    device: str
    dtype: torch.dtype
    name: str  # what the device is, for the logs and heartbeats
    vram: VramMode = VramMode.NORMAL
    free_bytes: int | None = None  # free GPU memory at start, which `auto` chose the mode from

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")


def choose_device(setting: str, cuda: bool, mps: bool) -> str:
    if setting != "auto":
        return setting
    return "cuda" if cuda else "mps" if mps else "cpu"


def choose_dtype(setting: str, device: str, bfloat16_supported: bool) -> torch.dtype:
    """ValueError for float16 on the CPU (too slow and partly unsupported there) and for bfloat16 on a
    GPU without it."""
    kind = device.split(":", 1)[0]
    if setting == "auto":
        return torch.float32 if kind == "cpu" else torch.float16
    dtype = DTYPES[setting]
    if dtype is torch.float16 and kind == "cpu":
        raise ValueError("FLEET_DTYPE=float16 needs a GPU; on the CPU use float32 (or auto)")
    if dtype is torch.bfloat16 and kind == "cuda" and not bfloat16_supported:
        raise ValueError("this GPU has no bfloat16; use FLEET_DTYPE=float16 (or auto)")
    return dtype


def placement(
    device_setting: str = "auto", dtype_setting: str = "auto", vram_setting: str = "auto"
) -> Placement:
    """The device, dtype and VRAM mode this worker runs its models with, from its settings and what
    torch sees."""
    cuda = torch.cuda.is_available()
    device = choose_device(device_setting, cuda, torch.backends.mps.is_available())
    if device.startswith("cuda") and not cuda:
        raise ValueError(f"FLEET_DEVICE={device_setting} but torch sees no CUDA device")
    bfloat16 = cuda and torch.cuda.is_bf16_supported()
    dtype = choose_dtype(dtype_setting, device, bfloat16)
    name = torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else device
    free = free_memory(device)
    return Placement(device, dtype, name, choose_vram_mode(vram_setting, device, free), free)


def free_memory(device: str) -> int | None:
    """Free bytes on a CUDA device, None elsewhere."""
    if not device.startswith("cuda"):
        return None
    free, _total = torch.cuda.mem_get_info(torch.device(device))
    return int(free)


def gpu_memory_in_use(device: str) -> int | None:
    """Bytes torch holds on a CUDA device (tensors, not its cache), None elsewhere."""
    if not device.startswith("cuda"):
        return None
    torch.cuda.synchronize(torch.device(device))
    return int(torch.cuda.memory_allocated(torch.device(device)))
