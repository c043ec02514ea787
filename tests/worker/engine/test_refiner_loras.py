"""The job's user LoRAs on the refiner UNet: applied in its phase, switched per job, misfits skipped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import UNet2DConditionModel
from safetensors.torch import load_file, save_file

from contracts import ImageInputs, JobType
from contracts.params import Lora
from tests.worker.engine.support import make_params, pixels
from tests.worker.engine.tiny_lora import write_tiny_lora
from worker.engine import loras
from worker.engine.folders import ModelFolders
from worker.engine.jobs import JobImages
from worker.engine.loras import MAX_UNMATCHED_KEYS, LoraAdapters, unet_lora_state
from worker.engine.metadata import RecordedImage
from worker.engine.tiny import TINY_NAME, WEIGHT_SEED, build_tiny_pipeline, write_tiny_checkpoint
from worker.settings import WorkerSettings
from worker.warm_models import WorkerEngine

REFINER = "fleet-tiny-refiner"
WIDE_REFINER = "fleet-wide-refiner"  # other channel widths: no LoRA of the tiny base fits it
BASE = f"{TINY_NAME}.safetensors"
NONE = Lora(enabled=True, model_name="None", weight=1.0)


def _wide_refiner(folder: Path, cache_dir: Path) -> None:
    """A diffusers folder whose UNet has the tiny layout but wider middle blocks (as the SDXL refiner
    differs from the base in its widths)."""
    pipeline = build_tiny_pipeline(cache_dir, WEIGHT_SEED + 200)
    config = dict(pipeline.unet.config)
    config["block_out_channels"] = (32, 96, 96)
    pipeline.unet = UNet2DConditionModel.from_config(config)
    pipeline.register_modules(unet=pipeline.unet)
    pipeline.save_pretrained(folder)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, engine_cache_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("refiner-lora-models")
    write_tiny_checkpoint(root / "checkpoints", TINY_NAME, cache_dir=engine_cache_dir)
    write_tiny_checkpoint(root / "checkpoints", REFINER, engine_cache_dir, WEIGHT_SEED + 100)
    _wide_refiner(root / "checkpoints" / WIDE_REFINER, engine_cache_dir)
    write_tiny_lora(root / "loras" / "b.safetensors", engine_cache_dir, seed=2, text_encoders=False)
    return root


@pytest.fixture
def worker(models: Path, engine_cache_dir: Path) -> Iterator[WorkerEngine]:
    engine = WorkerEngine(WorkerSettings(models_dir=models, cache_dir=engine_cache_dir))
    yield engine
    engine.release()


def _run(worker: WorkerEngine, weight: float | None, refiner: str = REFINER) -> RecordedImage:
    """A 4-step Speed run: the base makes steps 0 and 1, the refiner 2 and 3 (switch 1)."""
    slot = Lora(enabled=True, model_name="b.safetensors", weight=weight) if weight is not None else NONE
    params = make_params(
        steps=4,
        sampler_name="euler",
        scheduler_name="normal",
        base_model_name=BASE,
        refiner_model_name=refiner,
        overwrite_switch=1.0,
        loras=[slot, *[NONE] * 4],
    )
    images = worker.run(JobType.TEXT_TO_IMAGE, params, JobImages(ImageInputs()), [7], lambda _: None)
    image = next(iter(images))
    assert isinstance(image, RecordedImage)
    return image


def _without_refiner_loras(worker: WorkerEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on the refiner runs with every adapter off, the base keeping the job's LoRAs."""

    def none_on_the_refiner(loras: list[tuple[str, float]], unet: object) -> list[str]:
        worker.adapters.apply(unet, [])
        return []

    monkeypatch.setattr(worker, "_apply_refiner_loras", none_on_the_refiner)


def test_the_lora_changes_the_refiner_phase(worker: WorkerEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    with_lora = _run(worker, 1.0)
    sdxl = worker.load(BASE).sdxl
    assert sdxl.last_run is not None and sdxl.last_run.unet_calls == ("base", "base", "refiner", "refiner")
    refiner_unet = worker.library.load_refiner_unet(REFINER)
    assert len(worker.adapters.loaded(refiner_unet)) == 1
    assert _run(worker, 1.0).record.notes == with_lora.record.notes
    assert worker.adapters.loads == 2  # once on the base, once on the refiner; the next job only switches

    _without_refiner_loras(worker, monkeypatch)
    base_only_lora = _run(worker, 1.0)
    no_lora = _run(worker, None)

    # Same base phase (LoRA on), so the refiner's LoRA alone makes the difference...
    assert np.abs(pixels(with_lora.image) - pixels(base_only_lora.image)).max() > 0
    # ...and the base's LoRA matters too: the two phases each carry it.
    assert (pixels(base_only_lora.image) != pixels(no_lora.image)).any()
    assert not any(note.startswith("LoRA `") for note in with_lora.record.notes)


def test_weight_zero_on_the_refiner_is_no_lora(worker: WorkerEngine) -> None:
    plain = pixels(_run(worker, None).image)
    assert (pixels(_run(worker, 1.0).image) != plain).any()
    assert (pixels(_run(worker, 0.0).image) == plain).all()
    assert (pixels(_run(worker, None).image) == plain).all()  # adapters off again after a LoRA job


def test_a_lora_that_does_not_fit_the_refiner_is_skipped_with_a_note(
    worker: WorkerEngine, models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wide = worker.library.load_refiner_unet(WIDE_REFINER)
    lora = models / "loras" / "b.safetensors"
    assert unet_lora_state(wide, lora)[2] > MAX_UNMATCHED_KEYS
    narrow = worker.library.load_refiner_unet(REFINER)
    kept, _, unmatched = unet_lora_state(narrow, lora)
    assert unmatched == 0 and kept

    checks: list[Path] = []

    def counted(unet: object, path: Path) -> tuple[dict[str, object], dict[str, float] | None, int]:
        checks.append(path)
        return unet_lora_state(unet, path)

    monkeypatch.setattr(loras, "unet_lora_state", counted)
    skipped = _run(worker, 1.0, WIDE_REFINER)
    assert _run(worker, 1.0, WIDE_REFINER).record.notes == skipped.record.notes
    assert checks == [lora]  # the misfit is remembered: the file is not read again for that UNet

    assert skipped.refiner_model_name == WIDE_REFINER  # the job ran, with its refiner
    assert any(
        note.startswith("LoRA `b.safetensors` skipped on the refiner UNet") for note in skipped.record.notes
    )
    assert [lora.name for lora in skipped.record.loras] == ["b.safetensors"]  # still on the base
    _without_refiner_loras(worker, monkeypatch)
    assert (pixels(_run(worker, 1.0, WIDE_REFINER).image) == pixels(skipped.image)).all()


@pytest.mark.parametrize("ghosts", [6, 7])  # 12 keys that miss the model still load, 14 do not
def test_up_to_twelve_unmatched_keys_load_without_them(
    worker: WorkerEngine, models: Path, tmp_path: Path, ghosts: int
) -> None:
    state = load_file(models / "loras" / "b.safetensors")
    for index in range(ghosts):  # a LoRA pair (A and B) for a module the UNet lacks: two keys each
        state[f"unet.ghost_blocks.{index}.to_q.lora_A.weight"] = torch.ones(4, 64)
        state[f"unet.ghost_blocks.{index}.to_q.lora_B.weight"] = torch.ones(64, 4)
    (tmp_path / "loras").mkdir()
    save_file(state, tmp_path / "loras" / "ghosts.safetensors")
    adapters = LoraAdapters(ModelFolders(tmp_path))
    unet = worker.library.load_refiner_unet(REFINER)
    notes: list[str] = []

    kept, _, unmatched = unet_lora_state(unet, tmp_path / "loras" / "ghosts.safetensors")
    applied = adapters.apply(unet, [("ghosts", 1.0)], required=False, notes=notes)

    assert unmatched == 2 * ghosts and len(kept) == len(state) - 2 * ghosts
    if 2 * ghosts <= MAX_UNMATCHED_KEYS:
        assert [lora.name for lora in applied] == ["ghosts"] and notes == []
        assert unet.active_adapters() == adapters.loaded(unet) != []
    else:
        assert applied == [] and adapters.loaded(unet) == []
        assert notes == [
            "LoRA `ghosts` skipped on the refiner UNet: 14 of its UNet keys do not fit this model"
        ]
