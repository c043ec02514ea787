"""LoRAs: the job's list (five user slots, inline `<lora:…>` tags, the performance LoRA), applied.

Usage:

    adapters = LoraAdapters(folders)                  # one per worker; it remembers what is loaded
    wanted, notes = job_loras(params, folders, inline=tags)  # [(file name, weight)], performance LoRA last
    applied = adapters.apply(pipeline, wanted)        # the base pipeline (its from_pipe siblings share it)
    adapters.apply(refiner_unet, user_loras, required=False, notes=notes)  # a bare UNet: misfits skipped

Adapters are loaded once per file and model with diffusers (a pipeline's `load_lora_weights`; for a bare
UNet, the file converted by `StableDiffusionXLPipeline.lora_state_dict`, which reads kohya/A1111 files too,
then `load_lora_adapter`) and then only switched with `set_adapters`, so changing LoRAs between jobs never
reloads the checkpoint. On a bare UNet (the refiner), as Fooocus does, a LoRA whose UNet keys miss the
model (absent module or other shape) more than `MAX_UNMATCHED_KEYS` times is skipped with a note; one that
misses fewer loads without those keys. The adapter name carries the file's size and modification time, so
a replaced file is loaded again. Beyond `max_loaded` adapters on a model, the least recently used ones (not
needed by the current job) are deleted. A job with no LoRA, or only weight-0 ones, runs with every adapter
disabled: exactly the checkpoint's own output.
"""

from __future__ import annotations

import hashlib
import logging
import re
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from diffusers import StableDiffusionXLPipeline

from contracts.params import MAX_LORAS
from worker.engine.folders import MissingModelError, ModelFolders
from worker.engine.performance import performance_lora

if TYPE_CHECKING:
    from contracts.params import GenerationParams

log = logging.getLogger(__name__)

LORAS_FOLDER = "loras"
NO_LORA = "None"
DEFAULT_MAX_LOADED = 8
LORA_SUFFIX = ".safetensors"
MAX_UNMATCHED_KEYS = 12  # Fooocus skips a LoRA for a model when more of its keys than this do not match
UNET_PREFIX = "unet"
# A converted LoRA key: `unet.<module path>.<part>…`; the part says which weight dimension must fit.
_LORA_KEY = re.compile(
    r"^unet\.(?P<module>.+?)\.(?P<part>lora_A|lora_B|lora\.down|lora\.up|lora_down|lora_up"
    r"|lora_magnitude_vector|alpha)(?:\.|$)"
)
_INPUT_PARTS = ("lora_A", "lora.down", "lora_down")  # shape[1]: the module's input features
_OUTPUT_PARTS = ("lora_B", "lora.up", "lora_up")  # shape[0]: its output features

LoraWeight = tuple[str, float]
"""(file name in the `loras` folder, weight), as slots and inline `<lora:name:weight>` tags give them."""


@dataclass(frozen=True)
class AppliedLora:
    """A LoRA that is active in a run: for the job's metadata."""

    name: str
    weight: float
    path: Path


def requested_loras(params: GenerationParams, inline: Sequence[LoraWeight] = ()) -> list[LoraWeight]:
    """The enabled slots of `params.loras`, then the prompt's inline tags, at most five in all.

    Empty slots ("None") and disabled ones are skipped. A name already listed keeps its first weight
    (a tag naming a slot's LoRA does not apply it twice).
    """
    chosen: dict[str, float] = {}
    slots = [(lora.model_name, lora.weight) for lora in params.loras if lora.enabled]
    for name, weight in [*slots, *inline]:
        if name in ("", NO_LORA) or name in chosen:
            continue
        if len(chosen) == MAX_LORAS:
            break
        chosen[name] = float(weight)
    return list(chosen.items())


def lora_path(folders: ModelFolders, name: str) -> Path:
    """The file of LoRA `name` (the stem is accepted too); `MissingModelError` names the `loras` folder."""
    return folders.find(LORAS_FOLDER, name, LORA_SUFFIX, f"the LoRA `{name}`")


def job_loras(
    params: GenerationParams,
    folders: ModelFolders,
    inline: Sequence[LoraWeight] = (),
    *,
    skip_missing: bool = False,
) -> tuple[list[LoraWeight], list[str]]:
    """The user LoRAs plus the performance mode's own LoRA, and notes on what was left out.

    Fooocus appends the performance LoRA after the user's five. Without its file the fast mode still runs
    with its forced sampler and steps (images are then poor); a note says so in the log and metadata.
    With `skip_missing`, user LoRAs without a file are left out with a note too (for default lists).
    """
    notes: list[str] = []
    loras: list[LoraWeight] = []
    for name, weight in requested_loras(params, inline):
        try:
            lora_path(folders, name)
        except MissingModelError as error:
            if not skip_missing:
                raise
            notes.append(f"default LoRA left out: {error}")
            continue
        loras.append((name, weight))
    extra = performance_lora(params.performance_selection)
    if extra is not None:
        try:
            lora_path(folders, extra[0])
        except MissingModelError:
            notes.append(
                f"{params.performance_selection.value} ran without its LoRA: put `{extra[0]}` in "
                f"`{folders.folder(LORAS_FOLDER)}`"
            )
        else:
            loras = [*[lora for lora in loras if lora[0] != extra[0]], extra]
    for note in notes:
        log.warning("%s", note)
    return loras, notes


def _adapter_name(path: Path) -> str:
    # peft keeps adapters in module dicts: no dots. Size and mtime make a replaced file a new adapter.
    stat = path.stat()
    digest = hashlib.sha1(f"{path}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:10]
    return f"{re.sub(r'[^A-Za-z0-9_]', '_', path.stem)[:40]}_{digest}"


def _is_pipeline(target: Any) -> bool:
    return hasattr(target, "unet")


def _unet_of(target: Any) -> Any:
    """The UNet whose adapters `target` (a pipeline or a bare UNet) switches."""
    return target.unet if _is_pipeline(target) else target


def _module_of(key: str) -> str | None:
    match = _LORA_KEY.match(key)
    return match["module"] if match is not None else None


def _fits(modules: dict[str, Any], key: str, tensor: Any) -> bool:
    """Whether a converted LoRA key names a module of the UNet with the dimensions it expects."""
    match = _LORA_KEY.match(key)
    if match is None:
        return False
    module = modules.get(match["module"])
    weight = getattr(module, "weight", None)
    if weight is None:
        return False
    part = match["part"]
    if part in _INPUT_PARTS:
        return tensor.dim() > 1 and tensor.shape[1] == weight.shape[1]
    if part in _OUTPUT_PARTS:
        return tensor.shape[0] == weight.shape[0]
    return True


def unet_lora_state(unet: Any, path: Path) -> tuple[dict[str, Any], dict[str, float] | None, int]:
    """The LoRA file's UNet keys that fit `unet`, their network alphas, and how many UNet keys do not."""
    state, alphas = StableDiffusionXLPipeline.lora_state_dict(str(path))
    modules = dict(unet.named_modules())
    own = {key: tensor for key, tensor in state.items() if key.startswith(f"{UNET_PREFIX}.")}
    kept = {key: tensor for key, tensor in own.items() if _fits(modules, key, tensor)}
    if alphas is not None:
        alphas = {key: alpha for key, alpha in alphas.items() if _module_of(key) in modules}
    return kept, alphas, len(own) - len(kept)


class LoraMisfitError(ValueError):
    """A LoRA's UNet keys do not fit a bare UNet: it is skipped there (remembered, the file is not read
    again for that model)."""


class LoraAdapters:
    """LoRA adapters loaded into pipelines, switched per job, least recently used ones dropped."""

    def __init__(self, folders: ModelFolders, max_loaded: int = DEFAULT_MAX_LOADED) -> None:
        self.folders = folders
        self.max_loaded = max(1, max_loaded)
        # Keyed by the UNet module: a pipeline's from_pipe siblings share it, and so share its adapters.
        self._order: weakref.WeakKeyDictionary[Any, OrderedDict[str, None]] = weakref.WeakKeyDictionary()
        # Per UNet, adapters found not to fit it, and why (a bare UNet's fit check is deterministic).
        self._misfits: weakref.WeakKeyDictionary[Any, dict[str, str]] = weakref.WeakKeyDictionary()
        self.loads = 0
        """Adapters read from disk so far (tests count them)."""

    @property
    def folder(self) -> Path:
        return self.folders.folder(LORAS_FOLDER)

    def path(self, name: str) -> Path:
        return lora_path(self.folders, name)

    def apply(
        self,
        pipeline: Any,
        loras: Sequence[LoraWeight],
        *,
        required: bool = True,
        notes: list[str] | None = None,
    ) -> list[AppliedLora]:
        """Make exactly `loras` active on `pipeline` (or a bare UNet); returns the ones applied, weight 0
        left out.

        A missing file raises `MissingModelError` (also with `required=False`: the job asked for it).
        With `required=False`, a LoRA that does not fit the model (e.g. the refiner) is skipped, logged
        and described in `notes`.
        """
        wanted = [(name, weight, self.path(name)) for name, weight in loras]
        active = [(name, weight, path) for name, weight, path in wanted if weight != 0]
        order = self._order.setdefault(_unet_of(pipeline), OrderedDict())
        applied: list[AppliedLora] = []
        names: list[str] = []
        misfits = self._misfits.setdefault(_unet_of(pipeline), {})
        for name, weight, path in active:
            adapter = _adapter_name(path)
            if adapter not in order:
                reason = misfits.get(adapter) if not required else None
                if reason is None:
                    try:
                        self._load(pipeline, path, adapter)
                    except Exception as error:
                        if required:
                            raise ValueError(f"the LoRA `{name}` does not load: {error}") from error
                        reason = str(error)
                        if isinstance(error, LoraMisfitError):
                            misfits[adapter] = reason
                if reason is not None:
                    note = f"LoRA `{name}` skipped on the {_model_label(pipeline)}: {reason}"
                    log.warning("%s", note)
                    if notes is not None:
                        notes.append(note)
                    continue
                order[adapter] = None
            order.move_to_end(adapter)
            names.append(adapter)
            applied.append(AppliedLora(name, weight, path))
        self._evict(pipeline, order, keep=set(names))
        if names:
            pipeline.enable_lora()
            pipeline.set_adapters(names, [lora.weight for lora in applied])
        elif order:
            pipeline.disable_lora()
        return applied

    def _load(self, pipeline: Any, path: Path, adapter: str) -> None:
        log.info("loading the LoRA %s as adapter %s", path.name, adapter)
        if _is_pipeline(pipeline):
            pipeline.load_lora_weights(str(path), adapter_name=adapter)
        else:
            state, alphas, unmatched = unet_lora_state(pipeline, path)
            if not state or unmatched > MAX_UNMATCHED_KEYS:
                raise LoraMisfitError(f"{unmatched} of its UNet keys do not fit this model")
            # peft makes the new layers on the UNet's device and dtype.
            pipeline.load_lora_adapter(state, network_alphas=alphas, prefix=UNET_PREFIX, adapter_name=adapter)
        self.loads += 1

    def _evict(self, pipeline: Any, order: OrderedDict[str, None], keep: set[str]) -> None:
        for adapter in list(order):
            if len(order) <= self.max_loaded:
                break
            if adapter not in keep:
                pipeline.delete_adapters([adapter])
                del order[adapter]

    def loaded(self, pipeline: Any) -> list[str]:
        """Adapter names loaded on `pipeline`'s model (or the bare UNet), least recently used first."""
        return list(self._order.get(_unet_of(pipeline), ()))


def _model_label(target: Any) -> str:
    return type(target).__name__ if _is_pipeline(target) else "refiner UNet"
