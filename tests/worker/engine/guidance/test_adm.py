from __future__ import annotations

import pytest
import torch

from worker.engine.guidance.adm import (
    AdmScalers,
    batch_time_ids,
    refiner_time_ids,
    round64,
    sdxl_time_ids,
)


def test_emphasized_ids_scale_the_original_size_height_first() -> None:
    adm = AdmScalers(1.5, 0.8, 0.3)

    # 1152*896 is width*height: height 896 comes first. 0.8*896 = 716.8 and 0.8*1152 = 921.6 truncate.
    assert sdxl_time_ids(adm, 896, 1152, 999, negative=False) == [1344, 1728, 0, 0, 896, 1152]
    assert sdxl_time_ids(adm, 896, 1152, 999, negative=True) == [716, 921, 0, 0, 896, 1152]


def test_consistent_ids_after_the_end_use_round64_targets() -> None:
    adm = AdmScalers(1.5, 0.8, 0.3)

    assert sdxl_time_ids(adm, 1000, 1056, 100, negative=False) == [1024, 1024, 0, 0, 1024, 1024]
    assert sdxl_time_ids(adm, 1000, 1056, 999, negative=False) == [1500, 1584, 0, 0, 1024, 1024]
    assert (round64(1000), round64(1056), round64(1120)) == (1024, 1024, 1152)  # halves go to even


@pytest.mark.parametrize(
    ("end", "emphasized", "consistent"), [(0.3, 700, 699), (0.5, 500, 499.5), (1.0, 0.5, 0)]
)
def test_switch_is_at_999_times_one_minus_end(end: float, emphasized: float, consistent: float) -> None:
    adm = AdmScalers(2.0, 0.5, end)

    assert adm.emphasizes(emphasized)
    assert not adm.emphasizes(consistent)


def test_end_zero_never_emphasizes() -> None:
    assert not AdmScalers(1.5, 0.8, 0.0).emphasizes(999)


def test_batch_rows_are_negative_then_positive() -> None:
    like = torch.zeros((2, 6), dtype=torch.float16)
    rows = ([1.0] * 6, [2.0] * 6)

    cfg = batch_time_ids(rows, 2, cfg=True, like=like)
    plain = batch_time_ids(rows, 1, cfg=False, like=like)

    assert cfg.tolist() == [[1.0] * 6, [2.0] * 6] and cfg.dtype == torch.float16
    assert plain.tolist() == [[2.0] * 6]


def test_refiner_ids_carry_the_aesthetic_score() -> None:
    assert refiner_time_ids(896, 1152, negative=False) == [896, 1152, 0, 0, 6.0]
    assert refiner_time_ids(896, 1152, negative=True) == [896, 1152, 0, 0, 2.5]
