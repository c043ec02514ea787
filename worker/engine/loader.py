"""Finding and loading SDXL checkpoints from the worker's models folder, offline.

`models_dir/checkpoints` holds what Fooocus users drop there: single-file `.safetensors` checkpoints
in the original SDXL layout, or diffusers folders (a `model_index.json` plus component folders). A
single file needs diffusers-layout configs to load without the hub: its sidecar `<stem>.config/`
when present (our tiny model ships one), else the published SDXL base configs shipped in
`configs/sdxl-base` plus tokenizers built from open-clip's vocabulary, assembled once in the cache.

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
from pathlib import Path

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


class ModelLibrary:
    """The checkpoints in `models_dir/checkpoints`, with one loaded pipeline and one refiner UNet warm."""

    def __init__(
        self,
        models_dir: Path,
        cache_dir: Path,
        *,
        default_name: str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.checkpoints_dir = models_dir / "checkpoints"
        self.cache_dir = cache_dir
        self.dtype = dtype
        self._configured_default = default_name
        self._warm: tuple[str, StableDiffusionXLPipeline] | None = None
        self._warm_refiner: tuple[str, UNet2DConditionModel] | None = None
        self.loaded_name: str | None = None
        """The checkpoint name the last `load` actually used (after any fallback)."""

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
        if self._warm is not None and self._warm[0] == resolved:
            self.loaded_name = resolved
            return self._warm[1]
        self._release()
        pipeline = self._load_from_disk(self.checkpoints_dir / resolved)
        pipeline.set_progress_bar_config(disable=True)
        self._warm = (resolved, pipeline)
        self.loaded_name = resolved
        return pipeline

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
            self._free()

    def _release(self) -> None:
        # One pipeline at a time: drop the warm one before loading the next, or two SDXLs share the GPU.
        self._release_refiner()
        had_pipeline = self._warm is not None
        self._warm = None
        if had_pipeline:
            self._free()

    @staticmethod
    def _free() -> None:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

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
