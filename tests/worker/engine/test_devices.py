"""Device and precision by default: CUDA, then MPS, else the CPU; float16 on a GPU, float32 on the CPU;
a choice the device cannot run is refused at start, saying why."""

from __future__ import annotations

import pytest
import torch

from worker.engine.devices import choose_device, choose_dtype, placement
from worker.settings import WorkerSettings


@pytest.mark.parametrize(
    ("cuda", "mps", "chosen"), [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")]
)
def test_auto_takes_cuda_then_mps_then_the_cpu(cuda: bool, mps: bool, chosen: str) -> None:
    assert choose_device("auto", cuda, mps) == chosen
    assert choose_device("cuda:1", cuda, mps) == "cuda:1"  # a named device is kept


@pytest.mark.parametrize(
    ("device", "dtype"),
    [("cuda", torch.float16), ("cuda:1", torch.float16), ("mps", torch.float16), ("cpu", torch.float32)],
)
def test_auto_precision_is_half_on_a_gpu_and_full_on_the_cpu(device: str, dtype: torch.dtype) -> None:
    assert choose_dtype("auto", device, bfloat16_supported=True) is dtype


def test_named_precisions_and_what_is_refused() -> None:
    assert choose_dtype("bfloat16", "cuda", bfloat16_supported=True) is torch.bfloat16
    assert choose_dtype("float32", "cuda", bfloat16_supported=False) is torch.float32
    with pytest.raises(ValueError, match="no bfloat16"):
        choose_dtype("bfloat16", "cuda", bfloat16_supported=False)
    with pytest.raises(ValueError, match="needs a GPU"):
        choose_dtype("float16", "cpu", bfloat16_supported=False)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without a GPU")
def test_this_machine_runs_on_the_cpu_in_float32_and_refuses_cuda() -> None:
    chosen = placement()
    assert (chosen.device, chosen.dtype_name, chosen.name) == ("cpu", "float32", "cpu")
    with pytest.raises(ValueError, match="no CUDA device"):
        placement("cuda")


@pytest.mark.parametrize(("field", "value"), [("device", "gpu"), ("device", "cuda:x"), ("dtype", "fp16")])
def test_settings_name_what_is_not_a_device_or_dtype(field: str, value: str) -> None:
    with pytest.raises(ValueError, match=repr(value)):
        WorkerSettings(_env_file=None, **{field: value})  # type: ignore[call-arg]
