"""Finding and loading SDXL checkpoints from the worker's models folder, offline.

`models_dir/checkpoints` holds what Fooocus users drop there: single-file `.safetensors` checkpoints
in the original SDXL layout, or diffusers folders (a `model_index.json` plus component folders). A
single file needs diffusers-layout configs to load without the hub: its sidecar `<stem>.config/`
when present (our tiny model ships one), else the published SDXL base configs shipped in
`configs/sdxl-base` plus tokenizers built from open-clip's vocabulary, assembled once in the cache.

Loaded pipelines stay warm, least recently used first out, while their estimated size (bytes of every
parameter and buffer) fits in `cache_bytes`; the one in use always stays. `cache_bytes=0` keeps one.

A refiner needs only its UNet (Fooocus feeds it the base's text conditioning), so the library keeps
one refiner UNet warm beside the base pipeline. An SDXL-refiner-architecture single file needs its
sidecar config (the shipped configs are the base's); a diffusers folder brings its own.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import shutil
import tempfile
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel

from worker.engine import configs
from worker.engine.tiny import CONFIG_SUFFIX, TINY_NAME, write_tiny_checkpoint
from worker.engine.tokenizer import write_tokenizers

log = logging.getLogger(__name__)

SINGLE_FILE_SUFFIX = ".safetensors"
PIPELINE_INDEX = "model_index.json"


def _digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


class NoCheckpointError(LookupError):
    """The checkpoints folder is empty: there is nothing to load or fall back to."""


def pipeline_bytes(pipeline: Any) -> int:
    """Bytes of every parameter and buffer of the pipeline's models (shared tensors counted once)."""
    seen: set[int] = set()
    total = 0
    for component in pipeline.components.values():
        if not isinstance(component, torch.nn.Module):
            continue
        for tensor in (*component.parameters(), *component.buffers()):
            if tensor.data_ptr() not in seen:
                seen.add(tensor.data_ptr())
                total += tensor.numel() * tensor.element_size()
    return total


class ModelLibrary:
    """The checkpoints in `models_dir/checkpoints`: loaded pipelines kept warm within `cache_bytes`, and
    one refiner UNet beside them."""

    def __init__(
        self,
        models_dir: Path,
        cache_dir: Path,
        *,
        default_name: str | None = None,
        dtype: torch.dtype = torch.float32,
        cache_bytes: int = 0,
    ) -> None:
        self.checkpoints_dir = models_dir / "checkpoints"
        self.cache_dir = cache_dir
        self.dtype = dtype
        self.cache_bytes = cache_bytes
        self._configured_default = default_name
        self._warm: OrderedDict[str, tuple[StableDiffusionXLPipeline, int]] = OrderedDict()
        self._warm_refiner: tuple[str, UNet2DConditionModel] | None = None
        self.loaded_name: str | None = None
        """The checkpoint name the last `load` actually used (after any fallback)."""
        self.loads = 0
        """Pipelines read from disk so far (tests count them)."""
        self.on_evict: Callable[[str], None] = lambda name: None
        """Called with a checkpoint's name when it leaves the cache, so holders drop their references."""

    def checkpoints(self) -> list[str]:
        """Sorted names: `*.safetensors` files and diffusers folders (sidecar config folders excluded)."""
        if not self.checkpoints_dir.is_dir():
            return []
        names = []
        for entry in self.checkpoints_dir.iterdir():
            if entry.name.startswith("."):
                continue  # half-written files of `write_tiny_checkpoint`, editor leftovers
            single_file = entry.is_file() and entry.suffix == SINGLE_FILE_SUFFIX
            diffusers_folder = entry.is_dir() and (entry / PIPELINE_INDEX).is_file()
            if single_file or (diffusers_folder and not self._is_sidecar(entry)):
                names.append(entry.name)
        return sorted(names)

    def _is_sidecar(self, folder: Path) -> bool:
        stem = folder.name.removesuffix(CONFIG_SUFFIX)
        return (
            folder.name.endswith(CONFIG_SUFFIX) and (folder.parent / f"{stem}{SINGLE_FILE_SUFFIX}").is_file()
        )

    @property
    def default_name(self) -> str:
        """The configured default if it is present, else the first checkpoint."""
        available = self.checkpoints()
        if not available:
            raise NoCheckpointError(f"no checkpoints in {self.checkpoints_dir}")
        configured = self._match(self._configured_default, available) if self._configured_default else None
        return configured or available[0]

    @staticmethod
    def _match(name: str, available: list[str]) -> str | None:
        # Fooocus-API clients send file names; accept the stem too ("model" for "model.safetensors").
        for candidate in (name, f"{name}{SINGLE_FILE_SUFFIX}"):
            if candidate in available:
                return candidate
        return None

    def resolve(self, name: str) -> str:
        """The checkpoint `load(name)` would use: `name` itself, or the default when it is unknown."""
        return self._match(name, self.checkpoints()) or self.default_name

    def path(self, name: str) -> Path:
        """The file or folder of checkpoint `name` (resolved as `load` resolves it)."""
        return self.checkpoints_dir / self.resolve(name)

    def warm_names(self) -> list[str]:
        """The checkpoints loaded now, least recently used first."""
        return list(self._warm)

    def ensure_default(self) -> str:
        """Write the tiny random-weight checkpoint if the folder is empty; return the default name."""
        if not self.checkpoints():
            log.warning("no checkpoints in %s: writing the tiny random-weight model", self.checkpoints_dir)
            write_tiny_checkpoint(self.checkpoints_dir, TINY_NAME, cache_dir=self.cache_dir)
        return self.default_name

    def load(self, name: str) -> StableDiffusionXLPipeline:
        """The pipeline for `name` (or the default, logged, when unknown); `loaded_name` says which."""
        resolved = self.resolve(name)
        if resolved != name and self._match(name, [resolved]) is None:
            log.warning("checkpoint %r not found, using %r", name, resolved)
        self.loaded_name = resolved
        if resolved in self._warm:
            self._warm.move_to_end(resolved)
            return self._warm[resolved][0]
        path = self.checkpoints_dir / resolved
        # Make room first, judging the newcomer by its file size: two SDXLs must not meet in memory.
        self._evict(_disk_bytes(path))
        pipeline = self._load_from_disk(path)
        pipeline.set_progress_bar_config(disable=True)
        self.loads += 1
        self._warm[resolved] = (pipeline, pipeline_bytes(pipeline))
        return pipeline

    def _evict(self, incoming: int) -> None:
        dropped = False
        while self._warm and sum(size for _, size in self._warm.values()) + incoming > self.cache_bytes:
            name, _ = self._warm.popitem(last=False)
            log.info("dropping the warm checkpoint %s to make room", name)
            self.on_evict(name)
            dropped = True
        if dropped:
            _free_memory()

    def release(self) -> None:
        """Drop every warm pipeline and the refiner UNet (Fooocus-API's clean_vram)."""
        self._release_refiner()
        if self._warm:
            for name in list(self._warm):
                del self._warm[name]
                self.on_evict(name)
            _free_memory()

    def find(self, name: str) -> str | None:
        """The checkpoint `name` names (file name or stem), or None: no fallback to the default."""
        return self._match(name, self.checkpoints())

    def load_refiner_unet(self, name: str) -> UNet2DConditionModel:
        """The UNet of checkpoint `name` (as `find` resolves it), kept warm beside the base pipeline."""
        resolved = self.find(name)
        if resolved is None:
            raise LookupError(f"refiner checkpoint {name!r} is not in {self.checkpoints_dir}")
        if self._warm_refiner is not None and self._warm_refiner[0] == resolved:
            return self._warm_refiner[1]
        self._release_refiner()
        unet = self._load_unet_from_disk(self.checkpoints_dir / resolved)
        self._warm_refiner = (resolved, unet)
        return unet

    def _release_refiner(self) -> None:
        if self._warm_refiner is not None:
            self._warm_refiner = None
            _free_memory()

    def _load_unet_from_disk(self, path: Path) -> UNet2DConditionModel:
        if path.is_dir():
            return UNet2DConditionModel.from_pretrained(
                path, subfolder="unet", dtype=self.dtype, local_files_only=True
            )
        return UNet2DConditionModel.from_single_file(
            str(path),
            config=str(self._config_folder(path)),
            subfolder="unet",
            dtype=self.dtype,
            local_files_only=True,
        )

    def _config_folder(self, path: Path) -> Path:
        """A single file's diffusers configs: its sidecar folder, else the shipped SDXL base configs."""
        sidecar = path.with_name(path.stem + CONFIG_SUFFIX)
        return sidecar if (sidecar / PIPELINE_INDEX).is_file() else self.sdxl_base_config()

    def _load_from_disk(self, path: Path) -> StableDiffusionXLPipeline:
        if path.is_dir():
            return StableDiffusionXLPipeline.from_pretrained(
                path, dtype=self.dtype, local_files_only=True, add_watermarker=False
            )
        return StableDiffusionXLPipeline.from_single_file(
            str(path),
            config=str(self._config_folder(path)),
            dtype=self.dtype,
            local_files_only=True,
            add_watermarker=False,
        )

    def sdxl_base_config(self) -> Path:
        """A cache copy of the shipped SDXL base configs with both tokenizers added (built once).

        The folder name carries a digest of the shipped files, so an upgrade never reads a stale copy.
        """
        target = self.cache_dir / f"sdxl-base-config-{_digest(configs.SDXL_BASE)}"
        if (target / "tokenizer_2").is_dir():
            return target
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.cache_dir, prefix=".sdxl-base-config.") as scratch:
            staged = Path(scratch) / "config"
            shutil.copytree(configs.SDXL_BASE, staged)
            write_tokenizers(self.cache_dir, staged)
            try:
                staged.rename(target)
            except OSError:
                if not (target / "tokenizer_2").is_dir():  # lost a race only if the winner finished
                    raise
        return target


def _disk_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
