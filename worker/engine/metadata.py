"""The parameters an image was made with, in Fooocus's two metadata schemes (`meta_scheme`).

Usage:

    record = RunRecord(params, base_model="model.safetensors", base_model_path=path, loras=applied)
    text = metadata_text(record, seed=7, sampler="euler", scheduler="karras")  # scheme from params

`fooocus` is a JSON object with Fooocus's own keys (prompt, negative_prompt, styles, performance, steps,
resolution, guidance_scale, sharpness, adm_guidance, base_model + base_model_hash, refiner, sampler,
scheduler, seed, vae, loras with hashes, version, …). `a1111` is the text block A1111 and Civitai read:
the prompt, `Negative prompt: …`, then one line of `Key: value` pairs with A1111's sampler names
(`DPM++ 2M SDE Karras`). Hashes are the first 10 hex digits of the file's SHA-256, as Fooocus writes them,
computed once per file version. `worker.outputs.encode` embeds the text: PNG text chunks `parameters` and
`fooocus_scheme`, or EXIF UserComment / MakerNote for JPEG and WebP.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from worker.engine.runs import GeneratedImage

if TYPE_CHECKING:
    from contracts.params import GenerationParams
    from worker.engine.loras import AppliedLora

VERSION = "Fooocus v2.5.5 (fooocus-fleet)"
SCHEMES = ("fooocus", "a1111")
DEFAULT_ADAPTIVE_CFG = 7.0
HASH_LENGTH = 10

# Fooocus sampler name → A1111/Civitai name; "" keeps Fooocus's name (modules/flags.py).
A1111_SAMPLERS = {
    "euler": "Euler",
    "euler_ancestral": "Euler a",
    "heun": "Heun",
    "heunpp2": "",
    "dpm_2": "DPM2",
    "dpm_2_ancestral": "DPM2 a",
    "lms": "LMS",
    "dpm_fast": "DPM fast",
    "dpm_adaptive": "DPM adaptive",
    "dpmpp_2s_ancestral": "DPM++ 2S a",
    "dpmpp_sde": "DPM++ SDE",
    "dpmpp_sde_gpu": "DPM++ SDE",
    "dpmpp_2m": "DPM++ 2M",
    "dpmpp_2m_sde": "DPM++ 2M SDE",
    "dpmpp_2m_sde_gpu": "DPM++ 2M SDE",
    "dpmpp_3m_sde": "",
    "dpmpp_3m_sde_gpu": "",
    "ddpm": "",
    "lcm": "LCM",
    "tcd": "TCD",
    "ddim": "DDIM",
    "uni_pc": "UniPC",
    "uni_pc_bh2": "",
}
# Samplers whose A1111 name never takes " Karras".
NO_KARRAS = frozenset({"euler", "euler_ancestral", "heun", "dpm_fast", "dpm_adaptive", "ddim", "uni_pc"})


@dataclass(frozen=True)
class RunRecord:
    """What a job actually ran with (after preset and performance overrides), for its images' metadata."""

    params: GenerationParams
    base_model: str = ""
    base_model_path: Path | None = None
    refiner_model: str = "None"
    refiner_model_path: Path | None = None
    loras: tuple[AppliedLora, ...] = ()
    vae: str = "Default (model)"
    full_prompt: tuple[str, ...] = ()  # the styled prompts, once styles are applied; else the prompt
    full_negative_prompt: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # e.g. a performance LoRA that was missing
    preset: str = ""
    prompt_expansion: str = ""  # the Fooocus V2 text, when it ran
    refiner_swap_method: str = ""  # how the refiner ran (`joint`, `separate`), when it did

    def for_image(self, image: GeneratedImage, locate: Callable[[str], Path | None]) -> RunRecord:
        """This record with what the image's own diffusion used: its prompts, the refiner that ran (its
        file found with `locate`) and the engine's notes (sampler stand-ins, refiner fallbacks)."""
        record = self.with_prompts(image.prompt_metadata)
        if image.refiner_model_name not in ("", "None"):
            record = replace(
                record,
                refiner_model=image.refiner_model_name,
                refiner_model_path=locate(image.refiner_model_name),
                refiner_swap_method=image.refiner_swap_method,
            )
        return replace(record, notes=record.notes + tuple(image.notes)) if image.notes else record

    def with_prompts(self, plan: Mapping[str, object] | None) -> RunRecord:
        """This record with what an image's prompts became (`PromptPlan.metadata()`), when it has any."""
        if not plan:
            return self
        skipped = plan.get("prompt_expansion_skipped")
        return replace(
            self,
            full_prompt=tuple(str(text) for text in _texts(plan.get("full_prompt"))),
            full_negative_prompt=tuple(str(text) for text in _texts(plan.get("full_negative_prompt"))),
            prompt_expansion=str(plan.get("prompt_expansion") or ""),
            notes=self.notes + ((f"Fooocus V2 skipped: {skipped}",) if skipped else ()),
        )


def _texts(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []


@dataclass(frozen=True, slots=True)
class RecordedImage(GeneratedImage):
    """A generated image with the record of its run attached (`worker.warm_models.WorkerEngine.run`)."""

    record: RunRecord | None = None


_hashes: dict[tuple[str, int, int], str] = {}
_hash_lock = threading.Lock()


def file_hash(path: Path | None) -> str:
    """First 10 hex digits of the file's SHA-256 ("" without a file); cached per path, size and mtime."""
    if path is None or not path.is_file():
        return ""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _hash_lock:
        if key in _hashes:
            return _hashes[key]
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    with _hash_lock:
        _hashes[key] = digest.hexdigest()[:HASH_LENGTH]
    return _hashes[key]


def _stem(name: str) -> str:
    return Path(name).stem if name not in ("", "None") else name


def _prompts(record: RunRecord) -> tuple[list[str], list[str]]:
    params = record.params
    positive = list(record.full_prompt) or [line for line in params.prompt.splitlines() if line.strip()]
    negative = list(record.full_negative_prompt) or (
        [params.negative_prompt] if params.negative_prompt else []
    )
    return positive, negative


def fooocus_metadata(record: RunRecord, seed: int, sampler: str, scheduler: str) -> dict[str, object]:
    """The `fooocus` scheme: Fooocus's JSON keys, sorted as Fooocus sorts them."""
    params = record.params
    advanced = params.advanced_params
    width, height = params.size
    full_prompt, full_negative = _prompts(record)
    data: dict[str, object] = {
        "prompt": params.prompt,
        "negative_prompt": params.negative_prompt,
        "full_prompt": full_prompt,
        "full_negative_prompt": full_negative,
        "prompt_expansion": record.prompt_expansion,
        "styles": str(list(params.style_selections)),
        "performance": params.performance_selection.value,
        "steps": params.steps,
        "resolution": str((width, height)),
        "guidance_scale": params.guidance_scale,
        "sharpness": params.sharpness,
        "adm_guidance": str(
            (advanced.adm_scaler_positive, advanced.adm_scaler_negative, advanced.adm_scaler_end)
        ),
        "base_model": _stem(record.base_model),
        "base_model_hash": file_hash(record.base_model_path),
        "refiner_switch": params.refiner_switch,
        "sampler": sampler,
        "scheduler": scheduler,
        "seed": str(seed),
        "vae": _stem(record.vae),
        "loras": [[_stem(lora.name), lora.weight, file_hash(lora.path)] for lora in record.loras],
        "metadata_scheme": params.meta_scheme,
        "version": VERSION,
    }
    if record.refiner_model not in ("", "None"):
        data["refiner_model"] = _stem(record.refiner_model)
        data["refiner_model_hash"] = file_hash(record.refiner_model_path)
        if record.refiner_swap_method:
            data["refiner_swap_method"] = record.refiner_swap_method
    if advanced.adaptive_cfg != DEFAULT_ADAPTIVE_CFG:
        data["adaptive_cfg"] = advanced.adaptive_cfg
    if advanced.clip_skip > 1:
        data["clip_skip"] = advanced.clip_skip
    if advanced.freeu_enabled:
        data["freeu"] = str((advanced.freeu_b1, advanced.freeu_b2, advanced.freeu_s1, advanced.freeu_s2))
    for index, lora in enumerate(record.loras, start=1):
        data[f"lora_combined_{index}"] = f"{_stem(lora.name)} : {lora.weight}"
    if record.notes:
        data["notes"] = list(record.notes)
    if record.preset:
        data["preset"] = record.preset
    return dict(sorted(data.items()))


def a1111_sampler(sampler: str, scheduler: str) -> str:
    """Fooocus sampler + scheduler → A1111's name (`dpmpp_2m_sde_gpu` + karras → `DPM++ 2M SDE Karras`)."""
    name = A1111_SAMPLERS.get(sampler, "")
    if not name:
        return sampler
    return f"{name} Karras" if scheduler == "karras" and sampler not in NO_KARRAS else name


def _quote(value: object) -> str:
    # A1111's rule: a value with a comma, colon or newline is written as a JSON string.
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if any(c in text for c in ",:\n") else text


def a1111_text(record: RunRecord, seed: int, sampler: str, scheduler: str) -> str:
    """The `a1111` scheme: prompt, `Negative prompt: …`, and the `Key: value, …` line."""
    params = record.params
    advanced = params.advanced_params
    width, height = params.size
    pairs: dict[str, object] = {
        "Steps": params.steps,
        "Sampler": a1111_sampler(sampler, scheduler),
        "Seed": seed,
        "Size": f"{width}x{height}",
        "CFG scale": params.guidance_scale,
        "Sharpness": params.sharpness,
        "ADM Guidance": (advanced.adm_scaler_positive, advanced.adm_scaler_negative, advanced.adm_scaler_end),
        "Model": _stem(record.base_model),
        "Model hash": file_hash(record.base_model_path),
        "Performance": params.performance_selection.value,
        "Scheduler": scheduler,
        "VAE": _stem(record.vae),
        "Raw prompt": params.prompt,
        "Raw negative prompt": params.negative_prompt,
    }
    if record.refiner_model not in ("", "None"):
        pairs["Refiner"] = _stem(record.refiner_model)
        pairs["Refiner hash"] = file_hash(record.refiner_model_path)
    if advanced.adaptive_cfg != DEFAULT_ADAPTIVE_CFG:
        pairs["Adaptive CFG"] = advanced.adaptive_cfg
    if advanced.freeu_enabled:
        pairs["FreeU"] = (advanced.freeu_b1, advanced.freeu_b2, advanced.freeu_s1, advanced.freeu_s2)
    if record.loras:
        pairs["Lora hashes"] = ", ".join(f"{_stem(x.name)}: {file_hash(x.path)}" for x in record.loras)
        pairs["Lora weights"] = ", ".join(f"{_stem(x.name)}: {x.weight}" for x in record.loras)
    pairs["Version"] = VERSION
    line = ", ".join(f"{key}: {_quote(value)}" for key, value in pairs.items())
    positive, negative = _prompts(record)
    negative_line = f"\nNegative prompt: {', '.join(negative)}" if negative else ""
    return f"{', '.join(positive)}{negative_line}\n{line}".strip()


def metadata_text(record: RunRecord, seed: int, sampler: str = "", scheduler: str = "") -> tuple[str, str]:
    """(text, scheme) for `record.params.meta_scheme`; an unknown scheme is written as `fooocus`."""
    advanced = record.params.advanced_params
    sampler = sampler or advanced.sampler_name
    scheduler = scheduler or advanced.scheduler_name
    if record.params.meta_scheme == "a1111":
        return a1111_text(record, seed, sampler, scheduler), "a1111"
    data = fooocus_metadata(record, seed, sampler, scheduler)
    data["metadata_scheme"] = "fooocus"
    return json.dumps(data, ensure_ascii=False), "fooocus"
