"""Image metadata in both schemes, embedded in PNG, JPEG and WebP and read back."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from PIL import Image

from contracts.params import AdvancedParams, GenerationParams, Performance
from worker.engine.loras import AppliedLora
from worker.engine.metadata import VERSION, RunRecord, a1111_sampler, metadata_text
from worker.outputs import encode, read_metadata

PROMPT = "a cat, sitting: on a mat\nwith a hat 帽子"  # a comma, a colon, a second line, not ASCII


@pytest.fixture
def record(tmp_path: Path) -> RunRecord:
    (tmp_path / "base.safetensors").write_bytes(b"base weights")
    (tmp_path / "detail.safetensors").write_bytes(b"lora weights")
    params = GenerationParams(
        prompt=PROMPT,
        negative_prompt="blurry",
        performance_selection=Performance.QUALITY,
        aspect_ratios_selection="896*1152",
        guidance_scale=5.0,
        image_seed=3,
        meta_scheme="fooocus",
        advanced_params=AdvancedParams(adaptive_cfg=6.0, sampler_name="dpmpp_2m_sde_gpu"),
    )
    lora = AppliedLora("detail.safetensors", 0.4, tmp_path / "detail.safetensors")
    return RunRecord(params, "base.safetensors", tmp_path / "base.safetensors", loras=(lora,), notes=("n1",))


def _sha10(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:10]


@pytest.mark.parametrize("extension", ["png", "jpeg", "webp"])
def test_the_fooocus_scheme_round_trips(record: RunRecord, extension: str) -> None:
    text, scheme = metadata_text(record, seed=1234, sampler="dpmpp_2m_sde_gpu", scheduler="karras")
    data, _, _ = encode(Image.new("RGB", (16, 16), "red"), extension, (text, scheme))

    read_text, read_scheme = read_metadata(data)
    assert read_scheme == "fooocus"
    meta = json.loads(read_text or "")
    assert list(meta) == sorted(meta)  # Fooocus writes its keys sorted
    assert meta["prompt"] == PROMPT and meta["negative_prompt"] == "blurry"
    assert meta["full_prompt"] == ["a cat, sitting: on a mat", "with a hat 帽子"]
    assert (meta["performance"], meta["steps"], meta["resolution"]) == ("Quality", 60, "(896, 1152)")
    assert (meta["guidance_scale"], meta["sharpness"], meta["adaptive_cfg"]) == (5.0, 2.0, 6.0)
    assert meta["adm_guidance"] == "(1.5, 0.8, 0.3)" and meta["seed"] == "1234"
    assert (meta["sampler"], meta["scheduler"]) == ("dpmpp_2m_sde_gpu", "karras")
    assert (meta["base_model"], meta["base_model_hash"]) == ("base", _sha10(b"base weights"))
    assert meta["loras"] == [["detail", 0.4, _sha10(b"lora weights")]]
    assert meta["lora_combined_1"] == "detail : 0.4"
    assert meta["styles"] == str(["Fooocus V2", "Fooocus Enhance", "Fooocus Sharp"])
    assert (meta["version"], meta["notes"], meta["metadata_scheme"]) == (VERSION, ["n1"], "fooocus")
    assert "refiner_model" not in meta


def _a1111_pairs(line: str) -> dict[str, str]:
    """A reference reader of the `Key: value, …` line: values in double quotes are JSON strings."""
    pairs: dict[str, str] = {}
    rest = line
    while rest:
        key, _, rest = rest.partition(": ")
        if rest.startswith('"'):
            value, end = json.JSONDecoder().raw_decode(rest)
            rest = rest[end:]
        else:
            value, _, rest = rest.partition(",")
            rest = "," + rest if rest else ""
        pairs[key.strip()] = str(value)
        rest = rest.removeprefix(",").lstrip()
    return pairs


@pytest.mark.parametrize("extension", ["png", "jpeg"])
def test_the_a1111_scheme_round_trips(record: RunRecord, extension: str) -> None:
    params = record.params.model_copy(update={"meta_scheme": "a1111"})
    record = RunRecord(params, record.base_model, record.base_model_path, loras=record.loras)
    text, scheme = metadata_text(record, seed=1234, sampler="dpmpp_2m_sde_gpu", scheduler="karras")
    data, _, _ = encode(Image.new("RGB", (16, 16)), extension, (text, scheme))

    read_text, read_scheme = read_metadata(data)
    assert read_scheme == "a1111" and read_text == text
    prompt, negative, line = (read_text or "").split("\n")
    assert prompt == "a cat, sitting: on a mat, with a hat 帽子"  # the prompts, joined as A1111 shows them
    assert negative == "Negative prompt: blurry"
    pairs = _a1111_pairs(line)
    assert pairs["Steps"] == "60" and pairs["Sampler"] == "DPM++ 2M SDE Karras" and pairs["Seed"] == "1234"
    assert (pairs["Size"], pairs["CFG scale"], pairs["Sharpness"]) == ("896x1152", "5.0", "2.0")
    assert pairs["ADM Guidance"] == "(1.5, 0.8, 0.3)" and pairs["Adaptive CFG"] == "6.0"
    assert (pairs["Model"], pairs["Model hash"]) == ("base", _sha10(b"base weights"))
    assert pairs["Lora hashes"] == f"detail: {_sha10(b'lora weights')}"
    assert pairs["Lora weights"] == "detail: 0.4"
    assert pairs["Raw prompt"] == PROMPT and pairs["Version"] == VERSION
    assert (pairs["Performance"], pairs["Scheduler"]) == ("Quality", "karras")


@pytest.mark.parametrize(
    ("sampler", "scheduler", "name"),
    [
        ("dpmpp_2m_sde_gpu", "karras", "DPM++ 2M SDE Karras"),
        ("dpmpp_2m_sde_gpu", "normal", "DPM++ 2M SDE"),
        ("euler", "karras", "Euler"),  # Civitai has no "Euler Karras"
        ("euler_ancestral", "normal", "Euler a"),
        ("lcm", "lcm", "LCM"),
        ("dpmpp_3m_sde_gpu", "karras", "dpmpp_3m_sde_gpu"),  # no A1111 name: Fooocus's own
    ],
)
def test_a1111_sampler_names(sampler: str, scheduler: str, name: str) -> None:
    assert a1111_sampler(sampler, scheduler) == name


def test_without_metadata_nothing_is_embedded() -> None:
    for extension in ("png", "jpeg", "webp"):
        data, ext, content_type = encode(Image.new("RGB", (8, 8)), extension, None)
        assert read_metadata(data) == (None, None) and content_type == f"image/{ext}"
